"""SQLAlchemy models of Orderbridge's system of record, one module per area.

``core`` holds the master data, stock, orders and the audit trail; ``fulfillment`` the order
lifecycle records (checks, allocations, backorders, shipments, revisions, returns,
notifications); ``sync`` the spreadsheet trackers; ``finance`` invoices, credits, disputes;
``auth`` the sign-in state beside FAB's users; ``imports`` the runs of file imports;
``service_levels`` metric targets, the improvement log and the weekly reports made.
Everything is re-exported here, so ``from portal.models import X`` works for every model.
Records change only through ``portal.services``.
"""

from portal.models.auth import *  # noqa: F403
from portal.models.auth import __all__ as _auth_all
from portal.models.core import *  # noqa: F403
from portal.models.core import __all__ as _core_all
from portal.models.finance import *  # noqa: F403
from portal.models.finance import __all__ as _finance_all
from portal.models.fulfillment import *  # noqa: F403
from portal.models.fulfillment import __all__ as _fulfillment_all
from portal.models.imports import *  # noqa: F403
from portal.models.imports import __all__ as _imports_all
from portal.models.service_levels import *  # noqa: F403
from portal.models.service_levels import __all__ as _service_levels_all
from portal.models.sync import *  # noqa: F403
from portal.models.sync import __all__ as _sync_all

__all__ = [
    *_auth_all,
    *_core_all,
    *_fulfillment_all,
    *_sync_all,
    *_finance_all,
    *_imports_all,
    *_service_levels_all,
]
