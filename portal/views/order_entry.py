"""Order entry in the browser: Orders → "Enter order" (one page: customer, ship-to, lines with
price, break, total and stock as you type), the order page's lines panel (add, change,
remove, cancel one, ask for a price) and Orders → "Price overrides" (the Supervisor's queue).

Every form posts through the action pipeline (``portal.actions.order_entry``); the entry
page shows a refused input again as typed with each field's reason, and an order saved lands
on its own page. What the order page shows around the record (checks, lines, price requests,
related records) is read by :func:`order_page` with a fixed number of queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import String, cast, func, inspect, literal, select, union_all
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

import portal.security as security
from portal.actions import Outcome
from portal.actions.order_entry import (
    ADD_LINE_FORM,
    APPROVE_PRICE_REQUEST_FORM,
    CANCEL_LINE_FORM,
    CHANGE_LINE_FORM,
    ENTER_ORDER_FORM,
    REJECT_PRICE_REQUEST_FORM,
    REMOVE_LINE_FORM,
    REQUEST_PRICE_FORM,
)
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import (
    INCOTERMS,
    CreditMemo,
    Customer,
    Dispute,
    Invoice,
    OrderLine,
    PriceOverrideRequest,
    PriceOverrideStatus,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
)
from portal.services import order_entry, orders, price_overrides, units
from portal.views.base import form_body, form_on_record, has_access_audited, run_form_action
from portal.views.orders import SalesOrderView

SHOW = "SalesOrderView.show"


def field_errors(outcome: Outcome) -> dict[str, str]:
    """A refusal's messages by form field (one line each)."""
    error = outcome.error or {}
    found = error.get("errors") or error.get("message")
    if not isinstance(found, dict):
        return {}
    return {
        name: "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
        for name, messages in found.items()
    }


# FAB's order form (which posts to /salesorderview/add, sent on here) names these differently
FAB_NAMES = {"customer": "customer_id", "ship_to": "ship_to_id"}


def _entry_names(form: Mapping[str, str]) -> dict[str, str]:
    return {FAB_NAMES.get(name, name): value for name, value in form.items()}


def entry_body() -> dict[str, str]:
    """The entry form's fields (a blank one not given), under the entry page's names."""
    return _entry_names(form_body())


class OrderEntryView(BaseView):
    """The "Enter order" page (``can_write`` on orders, so its menu entry too)."""

    route_base = "/order-entry"
    default_view = "form"
    class_permission_name = security.ORDERS
    method_permission_name = {"form": "write"}
    menu_permission = "can_write"
    datamodel = SQLAInterface(SalesOrder)  # names the record of an audited refusal

    @expose("/", methods=["GET", "POST"])
    @has_access_audited
    def form(self):
        status, errors = 200, {}
        if request.method == "POST":
            outcome = run_form_action(
                ENTER_ORDER_FORM,
                None,
                lambda order: (
                    f"{order.number} saved as a draft with {len(order.lines)} "
                    "line(s); Validate it to run the checks"
                ),
                read=entry_body,
            )
            if outcome.ok:
                return redirect(url_for(SHOW, pk=outcome.result.id))
            status, errors = outcome.status, field_errors(outcome)
        rows = max(
            [2]
            + [
                int(name.rpartition("_")[2])
                for name in request.form
                if name.startswith("quantity_") and name.rpartition("_")[2].isdigit()
            ]
        )
        return self.render_template(
            "order_entry.html",
            typed=_entry_names(request.form),
            errors=errors,
            rows=range(1, min(rows, 200) + 1),
            incoterms=INCOTERMS,
        ), status


def _order_view() -> SalesOrderView:
    """The registered order page (its template renders the line forms)."""
    return next(view for view in appbuilder.baseviews if isinstance(view, SalesOrderView))


def _line_form(action: Any, pk: int, success: Any):
    """A line form on the order page: back on the order after it; a refused input shows the
    order page again (422) with what was typed in that form and the reason next to it."""
    return form_on_record(_order_view(), action, pk, success, SHOW)


class OrderLinesView(BaseView):
    """The order page's line forms: each posts here and goes back to the order."""

    route_base = "/order-lines"
    class_permission_name = security.ORDERS
    method_permission_name = {
        "add": "write",
        "change": "write",
        "remove": "write",
        "cancel": "write",
        "request_price": "write",
    }
    datamodel = SQLAInterface(SalesOrder)

    @expose("/add/<int:pk>", methods=["POST"])
    @has_access_audited
    def add(self, pk: int):
        return _line_form(ADD_LINE_FORM, pk, lambda order: "line added")

    @expose("/change/<int:pk>", methods=["POST"])
    @has_access_audited
    def change(self, pk: int):
        return _line_form(CHANGE_LINE_FORM, pk, lambda order: "line changed")

    @expose("/remove/<int:pk>", methods=["POST"])
    @has_access_audited
    def remove(self, pk: int):
        return _line_form(REMOVE_LINE_FORM, pk, lambda order: "line removed")

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access_audited
    def cancel(self, pk: int):
        return _line_form(
            CANCEL_LINE_FORM,
            pk,
            lambda order: "line cancelled; the customer is told by mail",
        )

    @expose("/request-price/<int:pk>", methods=["POST"])
    @has_access_audited
    def request_price(self, pk: int):
        return _line_form(
            REQUEST_PRICE_FORM,
            pk,
            lambda req: f"price {req.requested_price} requested; a Supervisor decides",
        )


class PriceOverrideView(BaseView):
    """Orders → "Price overrides": the requests awaiting a Supervisor's decision."""

    route_base = "/price-overrides"
    default_view = "index"
    class_permission_name = security.ORDERS
    method_permission_name = {
        "index": "override_price",
        "approve": "override_price",
        "reject": "override_price",
    }
    menu_permission = "can_override_price"
    datamodel = SQLAInterface(PriceOverrideRequest)

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("price_overrides.html", requests=price_overrides.pending())

    def _decide(self, action: Any, pk: int, verb: str):
        back = request.form.get("next") == "order"
        outcome = run_form_action(
            action, pk, lambda req: f"price request for {req.order_line} {verb}"
        )
        if back and outcome.ok:
            return redirect(url_for(SHOW, pk=outcome.result.order_line.order_id))
        return redirect(url_for("PriceOverrideView.index"))

    @expose("/approve/<int:pk>", methods=["POST"])
    @has_access_audited
    def approve(self, pk: int):
        return self._decide(APPROVE_PRICE_REQUEST_FORM, pk, "approved")

    @expose("/reject/<int:pk>", methods=["POST"])
    @has_access_audited
    def reject(self, pk: int):
        return self._decide(REJECT_PRICE_REQUEST_FORM, pk, "rejected")


@dataclass
class OrderPage:
    """What the order page shows around the record."""

    order: SalesOrder
    lines: list[OrderLine]
    checks: list[order_entry.CheckRow]
    requests: list[PriceOverrideRequest]
    editable: bool
    related: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        return any(check.passed is not None for check in self.checks)

    def open_request(self, line: OrderLine) -> PriceOverrideRequest | None:
        return next(
            (r for r in self.requests if r.order_line_id == line.id and r.status == "requested"),
            None,
        )


# (heading, endpoint of the record page, model) of the records the order page links to
RELATED = (
    ("Shipments", "ShipmentView.show", Shipment),
    ("Invoices", "InvoiceView.show", Invoice),
    ("Returns", "ReturnView.show", ReturnAuthorization),
    ("Disputes", "DisputeView.show", Dispute),
    ("Credit memos", "CreditMemoView.show", CreditMemo),
)


def _related(order_id: int) -> dict[str, list[tuple[str, str]]]:
    """Links to the order's shipments, invoices, returns, disputes and credits (one query)."""
    of_invoices = select(Invoice.id).where(Invoice.order_id == order_id)
    parts = []
    for position, (_, _, model) in enumerate(RELATED):
        owner = model.invoice_id.in_(of_invoices) if model in (Dispute, CreditMemo) else None
        number = model.number
        if model is Invoice:  # an invoice not yet issued has no number
            number = func.coalesce(Invoice.number, literal("draft #") + cast(Invoice.id, String))
        parts.append(
            select(literal(position).label("kind"), model.id, number.label("number")).where(
                owner if owner is not None else model.order_id == order_id
            )
        )
    found: dict[str, list[tuple[str, str]]] = {heading: [] for heading, _, _ in RELATED}
    rows = db.session.execute(union_all(*parts).order_by("kind", "id")).all()
    for kind, record_id, number in rows:
        heading, endpoint, _ = RELATED[kind]
        found[heading].append((number, url_for(endpoint, pk=record_id)))
    return found


def order_page(order: SalesOrder) -> OrderPage:
    """The order's lines with their products, its checks, its price requests and related
    records, each read with one query (the lines become ``order.lines``)."""
    lines = list(
        db.session.execute(
            select(OrderLine)
            .where(OrderLine.order_id == order.id)
            .options(joinedload(OrderLine.product))
            .order_by(OrderLine.line_no)
        ).scalars()
    )
    if "lines" in inspect(order).unloaded:  # the page's actions read them too
        set_committed_value(order, "lines", lines)
    requests = list(
        db.session.execute(
            select(PriceOverrideRequest)
            .where(PriceOverrideRequest.order_line_id.in_([line.id for line in lines]))
            .order_by(PriceOverrideRequest.id)
        ).scalars()
    )
    return OrderPage(
        order,
        lines,
        order_entry.checklist(order.id),
        requests,
        order.status in orders.EDITABLE_STATUSES,
        _related(order.id),
    )


def register_order_entry_views() -> None:
    """Add Orders → Enter order and Orders → Price overrides, and the order page's helpers."""
    appbuilder.add_view(OrderEntryView, "Enter order", icon="fa-plus", category="Orders")
    appbuilder.add_view_no_menu(OrderLinesView)
    appbuilder.add_view(PriceOverrideView, "Price overrides", icon="fa-tag", category="Orders")

    @current_app.context_processor
    def _entry_helpers() -> dict[str, Any]:
        return {
            "order_page": order_page,
            "load_customer": lambda pk: db.session.get(Customer, pk),
            "customer_exposure": order_entry.credit_exposure,
            "customer_orders": order_entry.customer_orders,
            "qty_text": units.quantity_text,
            "price_text": units.price_text,
            "requested_status": PriceOverrideStatus.REQUESTED.value,
            "user_can": lambda permission: current_actor("web").can(permission, security.ORDERS),
        }
