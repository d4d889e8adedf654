"""REST resources under ``/api/v1``, one module per area; :func:`register_apis` adds them all."""

from portal.api.core import register_core_apis
from portal.api.finance import register_finance_apis
from portal.api.orders import register_order_apis

__all__ = ["register_apis"]


def register_apis() -> None:
    """Add every REST resource to the AppBuilder (called once per app)."""
    register_core_apis()
    register_finance_apis()
    register_order_apis()
