"""Goods receipts in the browser: Inventory → "Receive stock" (the form) and "Receipts" (the
list, newest first, and each receipt's page).

The form posts through the action pipeline (``actions.receipts.RECEIVE_FORM``, the service
``receipts.record_receipt``); a refused input is shown again as typed with the reasons, a
receipt made lands on its own page with what arrived and what it fills. The product picker
asks :meth:`ReceiveStockView.products` for a few matches of what is typed (SKU or name), so
the page never lists the whole catalogue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import or_, select

import portal.security as security
from portal.actions.receipts import RECEIVE_FORM
from portal.extensions import appbuilder, db
from portal.models import Product, StockReceipt, Warehouse
from portal.views.base import ReadOnlyModelView, has_access_audited, keeps_input, run_form_action
from portal.views.pickers import Picked, PickerFilters

PRODUCT_MATCHES = 20
# A service's field name → the form's field that shows its error.
FORM_FIELDS = {"product_id": "product"}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


class StockReceiptView(PickerFilters, ReadOnlyModelView):
    datamodel = SQLAInterface(StockReceipt)
    class_permission_name = security.RECEIPTS
    list_title = "Receipts"
    show_title = "Goods receipt"
    list_columns = ["number", "received_at", "product", "warehouse", "quantity", "unit"]
    list_columns += ["reference", "received_by"]
    show_columns = [*list_columns, "note"]
    search_columns = ["product", "warehouse", "received_at", "number", "reference"]
    pickers = {
        "product": Picked("Product", Product, "product"),
        "warehouse": Picked("Warehouse", Warehouse, "warehouse"),
    }
    order_columns = ["number", "received_at", "quantity"]
    base_order = ("id", "desc")
    label_columns = {
        "number": "Receipt",
        "received_at": "Received at",
        "received_by": "Received by",
        "reference": "Purchase reference",
        "unit": "Unit",
    }
    formatters_columns = {"received_at": _when}


class ReceiveStockView(BaseView):
    """The "Receive stock" form (``can_write`` on receipts, so its menu entry too)."""

    route_base = "/receive-stock"
    default_view = "form"
    class_permission_name = security.RECEIPTS
    method_permission_name = {"form": "write", "products": "write"}
    menu_permission = "can_write"  # read-only roles do not see the entry (security._menu_grants)
    datamodel = SQLAInterface(StockReceipt)  # names the record of an audited refusal

    @expose("/", methods=["GET", "POST"])
    @has_access_audited
    def form(self):
        status, errors = 200, {}
        if request.method == "POST":
            outcome = run_form_action(RECEIVE_FORM, None, lambda received: received.summary())
            if outcome.ok:
                return redirect(url_for("StockReceiptView.show", pk=outcome.result.receipt.id))
            if not keeps_input(outcome):
                return redirect(url_for("StockReceiptView.list"))
            status, errors = outcome.status, _field_errors(outcome.error)
        warehouses = db.session.execute(
            select(Warehouse).where(Warehouse.active.is_(True)).order_by(Warehouse.priority)
        ).scalars()
        return self.render_template(
            "receive_stock.html", warehouses=list(warehouses), typed=request.form, errors=errors
        ), status

    @expose("/products")
    @has_access
    def products(self):
        """Up to 20 active products whose SKU or name contains ``q`` (SKU matches first)."""
        text = request.args.get("q", "").strip()[:100]
        if not text:
            return jsonify(result=[])
        in_sku = Product.sku.icontains(text, autoescape=True)
        rows = db.session.execute(
            select(Product.sku, Product.name, Product.unit)
            .where(Product.active.is_(True))
            .where(or_(in_sku, Product.name.icontains(text, autoescape=True)))
            .order_by(in_sku.desc(), Product.sku)
            .limit(PRODUCT_MATCHES)
        ).all()
        return jsonify(result=[row._asdict() for row in rows])


def _field_errors(error: dict[str, Any] | None) -> dict[str, str]:
    """The refusal's messages by the form's field names (one line each)."""
    if not error:
        return {}
    fields = error.get("errors") or error.get("message")
    if not isinstance(fields, dict):
        return {}
    return {
        FORM_FIELDS.get(name, name): "; ".join(map(str, messages))
        if isinstance(messages, list)
        else str(messages)
        for name, messages in fields.items()
    }


def register_receipt_views() -> None:
    """Add Inventory → Receive stock and Inventory → Receipts."""
    appbuilder.add_view(ReceiveStockView, "Receive stock", icon="fa-download", category="Inventory")
    appbuilder.add_view(StockReceiptView, "Receipts", icon="fa-inbox", category="Inventory")
