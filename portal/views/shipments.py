"""Shipments in the browser: the list and each shipment's page with its lines, the form for
carrier, tracking number, ETA and delay reason, and "Record delivery" (never a future date).

Both forms run ``portal.actions.shipments`` through the pipeline the REST API uses: after
Save the user stays on the shipment; a refused input is shown again as typed with the reason.
The page offers only what the state table (``states.SHIPMENTS``) and the user's role allow.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from sqlalchemy.orm import selectinload

import portal.security as security
from portal.actions.shipments import DELIVER, UPDATE_FORM
from portal.extensions import appbuilder, db
from portal.models import (
    DELAY_REASONS,
    Customer,
    OrderLine,
    SalesOrder,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    Warehouse,
    utcnow,
)
from portal.views.base import ReadOnlyModelView, form_on_record, has_access_audited
from portal.views.formatting import code_filter, formatters
from portal.views.pickers import Picked, PickerFilters, order_of_customer, product_on_lines

SHIPMENT = "ShipmentView.show"


class ShipmentView(PickerFilters, ReadOnlyModelView):
    """Shipments, newest first; each page lists its lines and links to its order."""

    datamodel = SQLAInterface(Shipment)
    class_permission_name = security.SHIPMENTS
    method_permission_name = {**security.METHOD_PERMISSIONS, "update": "write", "deliver": "write"}
    include_route_methods = {"list", "show", "update", "deliver"}
    list_title = "Shipments"
    show_title = "Shipment"
    show_template = "shipment_show.html"
    list_columns = [
        "number",
        "order",
        "warehouse",
        "carrier",
        "tracking_number",
        "ship_date",
        "eta",
        "delivered_date",
        "status",
        "is_late",
        "delay_reason",
    ]
    show_columns = list_columns
    search_columns = [
        "number",
        "order",
        "carrier",
        "status",
        "delay_reason",
        "ship_date",
        "eta",
        "warehouse",
    ]
    search_form_extra_fields = {
        "status": code_filter(ShipmentStatus),
        "delay_reason": code_filter(DELAY_REASONS, "Delay reason"),
    }
    pickers = {
        "customer": Picked("Customer", Customer, "customer", where=order_of_customer(Shipment)),
        "order": Picked("Order", SalesOrder, "order"),
        "warehouse": Picked("Warehouse", Warehouse, "warehouse"),
        "product": product_on_lines(
            Shipment.id, ShipmentLine.shipment_id, ShipmentLine.order_line_id
        ),
    }
    base_order = ("id", "desc")
    label_columns = {
        "eta": "ETA",
        "is_late": "Late",
        "tracking_number": "Tracking number",
        "delivered_date": "Delivered",
        "ship_date": "Shipped",
        "delay_reason": "Delay reason",
    }
    formatters_columns = formatters(
        day_columns=("ship_date", "eta", "delivered_date"),
        label_columns=("status", "delay_reason"),
        flag_columns=("is_late",),
        columns=list_columns,
    )

    @expose("/update/<int:pk>", methods=["POST"])
    @has_access_audited
    def update(self, pk: int):
        """Carrier, tracking number, ETA and delay reason; back on the shipment."""
        return form_on_record(
            self, UPDATE_FORM, pk, lambda shipment: f"shipment {shipment.number} saved", SHIPMENT
        )

    @expose("/deliver/<int:pk>", methods=["POST"])
    @has_access_audited
    def deliver(self, pk: int):
        """Record the delivery (the date given, today by default; never in the future)."""
        return form_on_record(
            self,
            DELIVER,
            pk,
            lambda shipment: f"shipment {shipment.number} delivered on {shipment.delivered_date}",
            SHIPMENT,
        )


def load_shipment(pk: int | str) -> Shipment | None:
    """The shipment with its lines, their order lines and products, and its order and
    customer, in a fixed number of queries (however many lines); ``pk`` as FAB's route
    hands it over (text)."""
    return db.session.execute(
        select(Shipment)
        .where(Shipment.id == int(pk))
        .options(
            selectinload(Shipment.lines)
            .selectinload(ShipmentLine.order_line)
            .selectinload(OrderLine.product),
            selectinload(Shipment.order).selectinload(SalesOrder.customer),
        )
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def register_shipment_views() -> None:
    """Add Orders → Shipments and the shipment page's helpers."""
    appbuilder.add_view(ShipmentView, "Shipments", icon="fa-truck", category="Orders")

    @current_app.context_processor
    def _shipment_helpers() -> dict[str, Any]:
        return {
            "load_shipment": load_shipment,
            "delay_reasons": DELAY_REASONS,
            "today": lambda: utcnow().date(),
        }
