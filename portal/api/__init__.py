"""REST resources under ``/api/v1``, one module per resource (finance in one module);
:func:`register_apis` adds them all."""

from portal.api.backorders import BackorderApi
from portal.api.core import register_core_apis
from portal.api.finance import register_finance_apis
from portal.api.lookups import LOOKUP_APIS
from portal.api.notifications import NotificationApi
from portal.api.order_lines import OrderLineApi
from portal.api.receipts import StockReceiptApi
from portal.api.returns import ReturnAuthorizationApi
from portal.api.sales_orders import SalesOrderApi
from portal.api.shipments import ShipmentApi
from portal.extensions import appbuilder

__all__ = ["register_apis"]


def register_apis() -> None:
    """Add every REST resource to the AppBuilder (called once per app)."""
    register_core_apis()
    register_finance_apis()
    for api in (
        SalesOrderApi,
        OrderLineApi,
        ShipmentApi,
        BackorderApi,
        ReturnAuthorizationApi,
        NotificationApi,
        StockReceiptApi,
        *LOOKUP_APIS,
    ):
        appbuilder.add_api(api)
