"""Flask-AppBuilder views, one module per area; :func:`register_views` adds them all."""

from flask import current_app

from portal.views.api_tokens import register_api_token_views
from portal.views.attach import register_attach_views
from portal.views.core import register_core_views
from portal.views.finance import register_finance_views
from portal.views.formatting import register_formatting
from portal.views.home import DashboardView, register_home_views
from portal.views.imports import register_import_views
from portal.views.notifications import register_notification_views
from portal.views.order_entry import register_order_entry_views
from portal.views.orders import register_order_views
from portal.views.receipts import register_receipt_views
from portal.views.returns import register_return_views
from portal.views.service_levels import register_service_level_views
from portal.views.shipments import register_shipment_views
from portal.views.sync import register_sync_views
from portal.views.sync_hooks import register_sheets_hook_view
from portal.views.sync_work import register_work_views
from portal.views.xlwings import register_xlwings_views

__all__ = ["DashboardView", "register_views"]


def register_views() -> None:
    """Add every view and menu entry to the AppBuilder (called once per app)."""
    register_formatting(current_app)
    register_order_views()
    register_order_entry_views()
    register_shipment_views()
    register_return_views()
    register_notification_views()
    register_core_views()
    register_receipt_views()
    register_import_views()
    register_finance_views()
    register_work_views()
    register_sync_views()
    register_attach_views()
    register_sheets_hook_view()
    register_xlwings_views()
    register_service_level_views()
    register_api_token_views()
    register_home_views()
    if current_app.config.get("MAILBOX_ENABLED"):
        from portal.views.mailbox import register_mailbox_view

        register_mailbox_view()
