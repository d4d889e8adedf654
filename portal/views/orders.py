"""Order views: the order list and record page with its lifecycle actions and timeline,
lines, backorders, and the "needs attention" list (the outbox's page is
in ``views/notifications.py``).

Every action posts to a route of its own (so FAB checks its permission, and a refusal is
audited) and runs one action of ``portal.actions`` through the pipeline the REST API uses;
the outcome is flashed, and a refused action changes nothing and says why.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import ColumnElement, select

import portal.security as security
from portal.actions.sales_orders import (
    ALLOCATE,
    AMEND_FORM,
    CANCEL,
    CONFIRM,
    CONVERT,
    INVOICE,
    RELEASE,
)
from portal.actions.shipments import SHIP_ORDER
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import (
    CANCEL_REASONS,
    DELAY_REASONS,
    Allocation,
    AuditEvent,
    Backorder,
    Customer,
    CustomerAddress,
    Notification,
    OrderLine,
    OrderStatus,
    Product,
    SalesOrder,
    Shipment,
    Warehouse,
)
from portal.services import fulfillment, orders, states
from portal.services.order_entry import hold_text
from portal.views.base import (
    ReadOnlyModelView,
    RecordHistoryMixin,
    ServiceModelView,
    has_access_audited,
    keeps_input,
    record_action,
    run_form_action,
)
from portal.views.formatting import code_filter, order_formatters
from portal.views.pickers import Picked, PickerFilters

ORDER_ACTIONS = {
    "confirm": "write",
    "allocate": "write",
    "convert": "write",
    "cancel": "write",
    "ship": "write",
    "amend": "write",
    "release": "release",
    "invoice": "write",
    "timeline": "read",
}


class OrderLineView(PickerFilters, ServiceModelView):
    service = orders.order_lines
    class_permission_name = security.ORDER_LINES
    list_title = "Order lines"
    list_columns = [
        "order",
        "line_no",
        "product",
        "quantity",
        "unit_price",
        "qty_allocated",
        "qty_backordered",
        "qty_shipped",
    ]
    show_columns = [
        "order",
        "line_no",
        "product",
        "quantity",
        "unit_price",
        "list_price",
        "discount_pct",
        "price_override_by",
        "price_override_reason",
        "qty_allocated",
        "qty_backordered",
        "qty_shipped",
        "qty_delivered",
        "qty_cancelled",
        "qty_returned",
    ]
    edit_columns = ["quantity", "unit_price", "discount_pct"]
    include_route_methods = {"list", "show", "edit"}
    search_columns = ["order", "product", "quantity"]
    quick_search_column = None
    pickers = {
        "order": Picked("Order", SalesOrder, "order"),
        "product": Picked("Product", Product, "product"),
    }


SHOW = "SalesOrderView.show"


def has_line_with_product(product_id: int) -> ColumnElement[bool]:
    """An order has a line of the product (served by ``ix_order_line_product``)."""
    return SalesOrder.id.in_(select(OrderLine.order_id).where(OrderLine.product_id == product_id))


def _confirmed(order: SalesOrder) -> str:
    if order.status == OrderStatus.ON_HOLD.value:
        return f"{order.number} is on hold: {hold_text(order.hold_reasons)} (see the checklist)"
    return f"{order.number} confirmed, promised for {order.promised_date}"


def _allocated(order: SalesOrder) -> str:
    backordered = sum(line.qty_backordered for line in order.lines)
    return f"{order.number} is {order.status.replace('_', ' ')}" + (
        f"; {backordered} units on backorder" if backordered else ""
    )


class SalesOrderView(PickerFilters, RecordHistoryMixin, ServiceModelView):
    service = orders.orders
    audit_entity = "sales_order"
    class_permission_name = security.ORDERS
    method_permission_name = {**security.METHOD_PERMISSIONS, **ORDER_ACTIONS}
    include_route_methods = {"list", "show", "add", "edit", "history", *ORDER_ACTIONS}
    list_title = "Sales orders"
    show_template = "sales_order_show.html"
    list_columns = [
        "number",
        "customer",
        "customer_po",
        "order_date",
        "requested_date",
        "status",
        "total_text",
    ]
    order_columns = ["number", "order_date", "requested_date", "status", "total_text"]
    keyset_ties = {"status": ("order_date",)}  # status + date, paged by key
    show_columns = [
        "number",
        "external_ref",
        "customer",
        "customer_po",
        "order_date",
        "requested_date",
        "promised_date",
        "ship_date",
        "delivered_date",
        "ship_mode",
        "ship_to",
        "ship_to_text",
        "payment_term",
        "incoterm",
        "currency",
        "status",
        "hold_reasons",
        "revision",
        "notes",
        "total_text",
        "source",
        "created_at",
        "updated_at",
    ]
    add_columns = [
        "customer",
        "customer_po",
        "requested_date",
        "ship_to",
        "payment_term",
        "incoterm",
        "notes",
    ]
    edit_columns = [
        "customer_po",
        "requested_date",
        "promised_date",
        "ship_to",
        "payment_term",
        "incoterm",
        "notes",
    ]
    search_columns = [
        "number",
        "external_ref",
        "customer",
        "customer_po",
        "status",
        "order_date",
        "requested_date",
    ]
    search_form_extra_fields = {"status": code_filter(OrderStatus)}
    pickers = {
        "customer": Picked("Customer", Customer, "customer"),
        "product": Picked("Product", Product, "product", where=has_line_with_product),
    }
    base_order = ("id", "desc")
    label_columns = {
        "customer_po": "Customer PO",
        "hold_reasons": "Hold reasons",
        "external_ref": "Team's order id",
        "ship_date": "Shipped on",
        "delivered_date": "Delivered on",
        "ship_to_text": "Ship-to (as imported)",
        "ship_to": "Ship to",
        "payment_term": "Payment terms",
        "total_text": "Total",
    }
    formatters_columns = order_formatters()

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """The list's "+" opens Enter order (the order with its lines, the ship-to picked from
        the customer's addresses); a form posted here is handled by Enter order itself (its
        permission, checks and pages), so no order is made another way."""
        if request.method == "GET":
            return redirect(url_for("OrderEntryView.form"))
        return current_app.view_functions["OrderEntryView.form"]()

    def prefill_form(self, form: Any, pk: Any) -> None:
        """The ship-to picker lists only the order's customer's addresses."""
        order = self._order(pk)
        form.ship_to.query_func = lambda: db.session.query(CustomerAddress).filter_by(
            customer_id=order.customer_id
        )
        form.ship_to._object_list = None

    def _order(self, pk: int) -> SalesOrder:
        order = db.session.get(SalesOrder, pk)
        if order is None:
            abort(404)
        return order

    @expose("/confirm/<int:pk>", methods=["POST"])
    @has_access_audited
    def confirm(self, pk: int):
        return record_action(
            CONFIRM,
            pk,
            _confirmed,
            SHOW,
            lambda order: "warning" if order.status == OrderStatus.ON_HOLD.value else "success",
        )

    @expose("/allocate/<int:pk>", methods=["POST"])
    @has_access_audited
    def allocate(self, pk: int):
        return record_action(ALLOCATE, pk, _allocated, SHOW)

    @expose("/convert/<int:pk>", methods=["POST"])
    @has_access_audited
    def convert(self, pk: int):
        return record_action(
            CONVERT, pk, lambda order: f"quote {order.number} is now a draft order", SHOW
        )

    @expose("/release/<int:pk>", methods=["POST"])
    @has_access_audited
    def release(self, pk: int):
        return record_action(
            RELEASE, pk, lambda order: f"hold released; {order.number} confirmed", SHOW
        )

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access_audited
    def cancel(self, pk: int):
        return record_action(CANCEL, pk, lambda order: f"{order.number} cancelled", SHOW)

    @expose("/invoice/<int:pk>", methods=["POST"])
    @has_access_audited
    def invoice(self, pk: int):
        return record_action(
            INVOICE, pk, lambda created: "invoiced: " + ", ".join(map(str, created)), SHOW
        )

    @expose("/ship/<int:pk>", methods=["GET", "POST"])
    @has_access_audited
    def ship(self, pk: int):
        """The ship form (one per warehouse holding the order's stock); a refused input is
        shown again as typed, any other outcome goes back to the order."""
        status = 200
        if request.method == "POST":
            outcome = run_form_action(
                SHIP_ORDER, pk, lambda shipment: f"shipment {shipment.number} created"
            )
            if not keeps_input(outcome):
                return redirect(url_for(SHOW, pk=pk))
            status = outcome.status
        order = self._order(pk)
        allocations = (
            db.session.query(Allocation)
            .join(OrderLine)
            .filter(OrderLine.order_id == order.id, Allocation.quantity > 0)
            .all()
        )
        by_warehouse: dict[Warehouse, dict[int, int]] = {}
        for row in allocations:
            by_warehouse.setdefault(row.warehouse, {})[row.order_line_id] = row.quantity
        return self.render_template(
            "order_ship.html",
            order=order,
            by_warehouse=sorted(by_warehouse.items(), key=lambda item: item[0].priority),
            delay_reasons=DELAY_REASONS,
            typed=request.form,
        ), status

    @expose("/amend/<int:pk>", methods=["GET", "POST"])
    @has_access_audited
    def amend(self, pk: int):
        """The amendment form; a refused input is shown again as typed, any other outcome
        goes back to the order."""
        status = 200
        if request.method == "POST":
            outcome = run_form_action(
                AMEND_FORM,
                pk,
                lambda order: f"{order.number} amended (revision {order.revision})",
            )
            if not keeps_input(outcome):
                return redirect(url_for(SHOW, pk=pk))
            status = outcome.status
        order = self._order(pk)
        return self.render_template("order_amend.html", order=order, typed=request.form), status

    @expose("/timeline/<int:pk>")
    @has_access
    def timeline(self, pk: int):
        """Everything that happened to the order: status changes, edits, mails, shipments."""
        order = self._order(pk)
        line_ids = [str(line.id) for line in order.lines]
        shipment_ids = [str(s.id) for s in db.session.query(Shipment).filter_by(order_id=order.id)]
        events = (
            db.session.query(AuditEvent)
            .filter(
                ((AuditEvent.entity == "sales_order") & (AuditEvent.entity_id == str(order.id)))
                | ((AuditEvent.entity == "order_line") & AuditEvent.entity_id.in_(line_ids))
                | ((AuditEvent.entity == "shipment") & AuditEvent.entity_id.in_(shipment_ids))
            )
            .order_by(AuditEvent.id)
            .all()
        )
        entries = [
            {
                "at": event.occurred_at,
                "kind": f"{event.entity.replace('_', ' ')} {event.action}",
                "who": event.actor,
                "detail": json.loads(event.changes),
            }
            for event in events
        ]
        entries += [
            {
                "at": note.sent_at or note.created_at,
                "kind": f"mail: {note.event} ({note.status})",
                "who": note.recipients,
                "detail": {"detail": {"subject": note.subject, "error": note.last_error}},
            }
            for note in db.session.query(Notification).filter_by(order_id=order.id)
        ]
        entries.sort(key=lambda entry: entry["at"])
        return self.render_template("order_timeline.html", order=order, entries=entries)


class OpenOrdersView(PickerFilters, ReadOnlyModelView):
    """Orders on hold, waiting for a fix or a Supervisor."""

    datamodel = SQLAInterface(SalesOrder)
    class_permission_name = security.ORDERS
    list_title = "Orders on hold"
    base_filters = [["status", FilterEqual, OrderStatus.ON_HOLD.value]]
    list_columns = ["number", "customer", "customer_po", "order_date", "hold_reasons"]
    show_columns = list_columns
    search_columns = ["number", "customer", "customer_po", "order_date"]
    pickers = {"customer": Picked("Customer", Customer, "customer")}
    base_order = ("id", "desc")


class NeedsAttentionView(BaseView):
    """Late, at-risk and backordered orders in one list."""

    route_base = "/attention"
    class_permission_name = security.ORDERS
    method_permission_name = {"index": "read"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("needs_attention.html", items=fulfillment.needs_attention())


class BackorderView(ReadOnlyModelView):
    datamodel = SQLAInterface(Backorder)
    class_permission_name = security.BACKORDERS
    list_title = "Backorders"
    list_columns = ["order_line", "quantity", "expected_date", "priority", "status", "created_at"]
    show_columns = [*list_columns, "filled_at"]
    search_columns = ["status", "expected_date", "priority"]
    base_order = ("id", "desc")


def record_actions(record: Any) -> set[str]:
    """The actions the signed-in user may take on ``record`` now (from the state machine)."""
    return set(states.actions(record, current_actor("web")))


def register_order_views() -> None:
    """Add the Orders menu: orders, attention list, lines, backorders (shipments and returns
    are in ``views/shipments.py`` and ``views/returns.py``)."""
    ab = appbuilder
    ab.add_view(SalesOrderView, "Sales orders", icon="fa-file-text-o", category="Orders")
    ab.add_view(
        NeedsAttentionView, "Needs attention", icon="fa-exclamation-triangle", category="Orders"
    )
    ab.add_view(OpenOrdersView, "Orders on hold", icon="fa-pause", category="Orders")
    ab.add_view(OrderLineView, "Order lines", icon="fa-list", category="Orders")
    ab.add_view(BackorderView, "Backorders", icon="fa-hourglass-half", category="Orders")

    @current_app.context_processor
    def _order_helpers() -> dict[str, Any]:
        return {
            "record_actions": record_actions,
            "cancel_reasons": CANCEL_REASONS,
            "load_order": lambda pk: db.session.get(SalesOrder, int(pk)),
        }
