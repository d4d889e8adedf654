"""Order views: the order list and record page with its lifecycle actions and timeline,
lines, shipments, backorders, returns, and the "needs attention" list (the outbox's page is
in ``views/notifications.py``).

Every action posts to a route of its own (so FAB checks its permission), calls one service
function and flashes the outcome; a refused action changes nothing and says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import (
    CANCEL_REASONS,
    DELAY_REASONS,
    RETURN_CONDITIONS,
    Allocation,
    AuditEvent,
    Backorder,
    Notification,
    OrderLine,
    OrderStatus,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
    Warehouse,
)
from portal.services import changes, fulfillment, invoices, lifecycle, orders, returns, states
from portal.services.base import ServiceError
from portal.views.base import ReadOnlyModelView, RecordHistoryMixin, ServiceModelView

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


class OrderLineView(ServiceModelView):
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
        "version",
    ]
    edit_columns = ["quantity", "unit_price", "discount_pct"]
    include_route_methods = {"list", "show", "edit"}
    search_columns = ["order", "product", "quantity"]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class SalesOrderView(RecordHistoryMixin, ServiceModelView):
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
        "total",
    ]
    order_columns = ["number", "order_date", "requested_date", "status"]
    show_columns = [
        "number",
        "customer",
        "customer_po",
        "order_date",
        "requested_date",
        "promised_date",
        "ship_to",
        "payment_term",
        "incoterm",
        "currency",
        "status",
        "hold_reasons",
        "revision",
        "notes",
        "total",
        "version",
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
    search_columns = ["number", "customer", "customer_po", "status", "order_date"]
    base_order = ("id", "desc")
    related_views = [OrderLineView]
    label_columns = {
        "customer_po": "Customer PO",
        "hold_reasons": "Hold reasons",
    }

    def _order(self, pk: int) -> SalesOrder:
        order = db.session.get(SalesOrder, pk)
        if order is None:
            abort(404)
        return order

    def _run(self, pk: int, call: Callable[[SalesOrder], str]):
        order = self._order(pk)
        try:
            flash(call(order), "success")
        except ServiceError as error:
            db.session.rollback()
            flash(error.message, "danger")
        except ValueError as error:
            db.session.rollback()
            flash(f"Invalid input: {error}", "danger")
        return redirect(url_for("SalesOrderView.show", pk=pk))

    @expose("/confirm/<int:pk>", methods=["POST"])
    @has_access
    def confirm(self, pk: int):
        def confirm(order: SalesOrder) -> str:
            lifecycle.confirm(order, current_actor("web"))
            if order.status == OrderStatus.ON_HOLD.value:
                return f"{order.number} is on hold: {order.hold_reasons}"
            return f"{order.number} confirmed, promised for {order.promised_date}"

        return self._run(pk, confirm)

    @expose("/allocate/<int:pk>", methods=["POST"])
    @has_access
    def allocate(self, pk: int):
        def allocate(order: SalesOrder) -> str:
            fulfillment.allocate(order, current_actor("web"))
            backordered = sum(line.qty_backordered for line in order.lines)
            return f"{order.number} is {order.status.replace('_', ' ')}" + (
                f"; {backordered} units on backorder" if backordered else ""
            )

        return self._run(pk, allocate)

    @expose("/convert/<int:pk>", methods=["POST"])
    @has_access
    def convert(self, pk: int):
        def convert(order: SalesOrder) -> str:
            lifecycle.convert_quote(order, current_actor("web"))
            return f"quote {order.number} is now a draft order"

        return self._run(pk, convert)

    @expose("/release/<int:pk>", methods=["POST"])
    @has_access
    def release(self, pk: int):
        def release(order: SalesOrder) -> str:
            lifecycle.release_hold(order, current_actor("web"), request.form.get("reason", ""))
            return f"hold released; {order.number} confirmed"

        return self._run(pk, release)

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access
    def cancel(self, pk: int):
        def cancel(order: SalesOrder) -> str:
            changes.cancel_order(
                order,
                current_actor("web"),
                request.form.get("reason_code", ""),
                request.form.get("note") or None,
            )
            return f"{order.number} cancelled"

        return self._run(pk, cancel)

    @expose("/ship/<int:pk>", methods=["GET", "POST"])
    @has_access
    def ship(self, pk: int):
        order = self._order(pk)
        if request.method == "GET":
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
            )

        def ship(order: SalesOrder) -> str:
            lines = {
                line.id: int(request.form[f"qty_{line.id}"])
                for line in order.lines
                if request.form.get(f"qty_{line.id}", "").strip() not in ("", "0")
            }
            shipment = fulfillment.ship(
                order,
                current_actor("web"),
                warehouse_id=int(request.form.get("warehouse_id", 0)),
                lines=lines,
                carrier=request.form.get("carrier", ""),
                tracking_number=request.form.get("tracking_number"),
                eta=_date(request.form.get("eta")),
                delay_reason=request.form.get("delay_reason") or None,
            )
            return f"shipment {shipment.number} created"

        return self._run(pk, ship)

    @expose("/invoice/<int:pk>", methods=["POST"])
    @has_access
    def invoice(self, pk: int):
        def invoice(order: SalesOrder) -> str:
            created = invoices.invoice_pending(order, current_actor("web"))
            return "invoiced: " + ", ".join(str(item) for item in created)

        return self._run(pk, invoice)

    @expose("/amend/<int:pk>", methods=["GET", "POST"])
    @has_access
    def amend(self, pk: int):
        order = self._order(pk)
        if request.method == "GET":
            return self.render_template("order_amend.html", order=order)

        def amend(order: SalesOrder) -> str:
            header: dict[str, Any] = {}
            for name in ("requested_date", "promised_date"):
                value = _date(request.form.get(name))
                if value is not None:
                    header[name] = value
            quantities = {
                line.id: int(request.form[f"qty_{line.id}"])
                for line in order.lines
                if request.form.get(f"qty_{line.id}", "").strip()
            }
            revision = changes.amend(
                order,
                current_actor("web"),
                reason=request.form.get("reason", ""),
                header=header,
                quantities=quantities,
                expected_version=int(request.form.get("version") or 0) or None,
            )
            return f"{order.number} amended (revision {revision.revision})"

        return self._run(pk, amend)

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


class OpenOrdersView(ReadOnlyModelView):
    """Orders on hold, waiting for a fix or a Supervisor."""

    datamodel = SQLAInterface(SalesOrder)
    class_permission_name = security.ORDERS
    list_title = "Orders on hold"
    base_filters = [["status", FilterEqual, OrderStatus.ON_HOLD.value]]
    list_columns = ["number", "customer", "customer_po", "order_date", "hold_reasons"]
    show_columns = list_columns
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


class ShipmentView(ReadOnlyModelView):
    datamodel = SQLAInterface(Shipment)
    class_permission_name = security.SHIPMENTS
    list_title = "Shipments"
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
    show_columns = [*list_columns, "version"]
    search_columns = ["number", "order", "carrier", "status", "ship_date", "eta"]
    base_order = ("id", "desc")


class BackorderView(ReadOnlyModelView):
    datamodel = SQLAInterface(Backorder)
    class_permission_name = security.BACKORDERS
    list_title = "Backorders"
    list_columns = ["order_line", "quantity", "expected_date", "priority", "status", "created_at"]
    show_columns = [*list_columns, "filled_at"]
    search_columns = ["status", "expected_date", "priority"]
    base_order = ("id", "desc")


RETURN_ACTIONS = {
    "authorize": "write",
    "reject": "write",
    "receive": "write",
    "credit": "write",
    "close": "write",
}


class ReturnView(ReadOnlyModelView):
    """Returns, with the actions their state allows on the record page."""

    datamodel = SQLAInterface(ReturnAuthorization)
    class_permission_name = security.RETURNS
    method_permission_name = {**security.METHOD_PERMISSIONS, **RETURN_ACTIONS}
    include_route_methods = {"list", "show", *RETURN_ACTIONS}
    list_title = "Returns"
    show_template = "return_show.html"
    list_columns = [
        "number",
        "order",
        "warehouse",
        "status",
        "reason",
        "requested_by",
        "created_at",
    ]
    show_columns = list_columns
    search_columns = ["number", "order", "status"]
    base_order = ("id", "desc")

    def _run(self, pk: int, call: Callable[[ReturnAuthorization], str]):
        rma = db.session.get(ReturnAuthorization, pk)
        if rma is None:
            abort(404)
        try:
            flash(call(rma), "success")
        except ServiceError as error:
            db.session.rollback()
            flash(error.message, "danger")
        except ValueError as error:
            db.session.rollback()
            flash(f"Invalid input: {error}", "danger")
        return redirect(url_for("ReturnView.show", pk=pk))

    @expose("/authorize/<int:pk>", methods=["POST"])
    @has_access
    def authorize(self, pk: int):
        def authorize(rma: ReturnAuthorization) -> str:
            returns.authorize(rma, current_actor("web"))
            return f"{rma.number} authorized"

        return self._run(pk, authorize)

    @expose("/reject/<int:pk>", methods=["POST"])
    @has_access
    def reject(self, pk: int):
        def reject(rma: ReturnAuthorization) -> str:
            returns.reject(rma, current_actor("web"))
            return f"{rma.number} rejected"

        return self._run(pk, reject)

    @expose("/receive/<int:pk>", methods=["POST"])
    @has_access
    def receive(self, pk: int):
        def receive(rma: ReturnAuthorization) -> str:
            received = {
                line.id: (
                    int(request.form[f"qty_{line.id}"]),
                    request.form.get(f"condition_{line.id}", ""),
                )
                for line in rma.lines
                if request.form.get(f"qty_{line.id}", "").strip() not in ("", "0")
            }
            returns.receive(rma, current_actor("web"), received)
            return f"{rma.number} received"

        return self._run(pk, receive)

    @expose("/credit/<int:pk>", methods=["POST"])
    @has_access
    def credit(self, pk: int):
        def credit(rma: ReturnAuthorization) -> str:
            returns.credit(rma, current_actor("web"))
            return f"{rma.number} credited; its credit memo awaits approval"

        return self._run(pk, credit)

    @expose("/close/<int:pk>", methods=["POST"])
    @has_access
    def close(self, pk: int):
        def close(rma: ReturnAuthorization) -> str:
            returns.close(rma, current_actor("web"))
            return f"{rma.number} closed"

        return self._run(pk, close)


def record_actions(record: Any) -> set[str]:
    """The actions the signed-in user may take on ``record`` now (from the state machine)."""
    return set(states.actions(record, current_actor("web")))


def register_order_views() -> None:
    """Add the Orders menu: orders, attention list, lines, shipments, backorders, returns."""
    ab = appbuilder
    ab.add_view(SalesOrderView, "Sales orders", icon="fa-file-text-o", category="Orders")
    ab.add_view(
        NeedsAttentionView, "Needs attention", icon="fa-exclamation-triangle", category="Orders"
    )
    ab.add_view(OpenOrdersView, "Orders on hold", icon="fa-pause", category="Orders")
    ab.add_view(OrderLineView, "Order lines", icon="fa-list", category="Orders")
    ab.add_view(ShipmentView, "Shipments", icon="fa-truck", category="Orders")
    ab.add_view(BackorderView, "Backorders", icon="fa-hourglass-half", category="Orders")
    ab.add_view(ReturnView, "Returns", icon="fa-undo", category="Orders")

    @current_app.context_processor
    def _order_helpers() -> dict[str, Any]:
        return {
            "record_actions": record_actions,
            "cancel_reasons": CANCEL_REASONS,
            "return_conditions": RETURN_CONDITIONS,
            "load_order": lambda pk: db.session.get(SalesOrder, pk),
            "load_return": lambda pk: db.session.get(ReturnAuthorization, pk),
        }
