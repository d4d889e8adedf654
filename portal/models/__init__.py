"""SQLAlchemy models of Orderbridge's system of record, one module per area.

``core`` holds the master data, stock, orders and the audit trail; ``fulfillment`` the order
lifecycle records (checks, allocations, backorders, shipments, revisions, returns,
notifications). Everything is re-exported here, so ``from portal.models import X`` works for
every model. Records change only through ``portal.services``.
"""

from portal.models.core import *  # noqa: F403
from portal.models.core import __all__ as _core_all
from portal.models.fulfillment import *  # noqa: F403
from portal.models.fulfillment import __all__ as _fulfillment_all

__all__ = [*_core_all, *_fulfillment_all]
