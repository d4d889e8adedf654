"""Returns in the browser: request one from a shipment's page (the lines of its order with
the units shipped and still returnable, no line ids typed), then authorize (a Supervisor,
never the requester), receive with restock or scrap per line, credit, close — or reject.

Every form runs ``portal.actions.returns`` through the pipeline the REST API uses. The
buttons come from the state table (``states.RETURNS``) and the user's permissions; after
Save the user is on the return, and a refused input is shown again as typed.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from sqlalchemy.orm import selectinload

import portal.security as security
from portal.actions.returns import (
    AUTHORIZE,
    CLOSE,
    CREDIT,
    RECEIVE_FORM,
    REJECT,
    REQUEST_FORM,
)
from portal.extensions import appbuilder, db
from portal.models import (
    RETURN_CONDITIONS,
    Customer,
    OrderLine,
    ReturnAuthorization,
    ReturnLine,
    ReturnStatus,
    SalesOrder,
    Shipment,
    Warehouse,
)
from portal.views.base import (
    ReadOnlyModelView,
    form_on_record,
    form_page,
    has_access_audited,
    record_action,
)
from portal.views.formatting import code_filter, formatters
from portal.views.pickers import Picked, PickerFilters, order_of_customer, product_on_lines

RETURN = "ReturnView.show"
RETURN_ACTIONS = {
    "authorize": "authorize",
    "reject": "write",
    "receive": "write",
    "credit": "write",
    "close": "write",
    "request_return": "write",
}
OPEN = (ReturnStatus.REQUESTED.value, ReturnStatus.AUTHORIZED.value)


def returnable_lines(order_id: int) -> list[dict[str, Any]]:
    """The order's shipped lines with the units shipped, returned, on open returns and still
    returnable (two queries)."""
    lines = (
        db.session.execute(
            select(OrderLine)
            .where(OrderLine.order_id == order_id, OrderLine.qty_shipped > 0)
            .options(selectinload(OrderLine.product))
            .order_by(OrderLine.line_no)
        )
        .scalars()
        .all()
    )
    pending: dict[int, int] = {}
    for line_id, quantity in db.session.execute(
        select(ReturnLine.order_line_id, ReturnLine.quantity)
        .join(ReturnAuthorization)
        .where(
            ReturnLine.order_line_id.in_([line.id for line in lines]),
            ReturnAuthorization.status.in_(OPEN),
        )
    ):
        pending[line_id] = pending.get(line_id, 0) + quantity
    return [
        {
            "line": line,
            "shipped": line.qty_shipped,
            "returned": line.qty_returned,
            "pending": pending.get(line.id, 0),
            "returnable": line.qty_shipped - line.qty_returned - pending.get(line.id, 0),
        }
        for line in lines
    ]


def shipment_returns(shipment: Shipment) -> list[ReturnAuthorization]:
    """The returns of the shipment's order (one query)."""
    return list(
        db.session.execute(
            select(ReturnAuthorization)
            .where(ReturnAuthorization.order_id == shipment.order_id)
            .order_by(ReturnAuthorization.id)
        ).scalars()
    )


class ReturnView(PickerFilters, ReadOnlyModelView):
    """Returns, with the actions their state allows on the record page."""

    datamodel = SQLAInterface(ReturnAuthorization)
    class_permission_name = security.RETURNS
    method_permission_name = {**security.METHOD_PERMISSIONS, **RETURN_ACTIONS}
    include_route_methods = {"list", "show", *RETURN_ACTIONS}
    list_title = "Returns"
    show_title = "Return"
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
    show_columns = [*list_columns, "credit_memo"]
    search_columns = ["number", "order", "status", "warehouse", "requested_by", "created_at"]
    search_form_extra_fields = {"status": code_filter(ReturnStatus)}
    pickers = {
        "customer": Picked(
            "Customer", Customer, "customer", where=order_of_customer(ReturnAuthorization)
        ),
        "order": Picked("Order", SalesOrder, "order"),
        "warehouse": Picked("Warehouse", Warehouse, "warehouse"),
        "product": product_on_lines(
            ReturnAuthorization.id, ReturnLine.rma_id, ReturnLine.order_line_id
        ),
    }
    base_order = ("id", "desc")
    label_columns = {"created_at": "Requested at", "requested_by": "Requested by"}
    formatters_columns = formatters(
        moment_columns=("created_at",), label_columns=("status",), columns=show_columns
    )

    @expose("/request/<int:pk>", methods=["GET", "POST"])
    @has_access_audited
    def request_return(self, pk: int):
        """The return form of shipment ``pk``'s order: units per shipped line, the warehouse
        they come back to, the reason. Made: on the new return; refused: shown again."""
        shipment = db.session.get(Shipment, pk)
        if shipment is None:
            abort(404)
        order_id = shipment.order_id

        def render() -> str:
            return self.render_template(
                "return_request.html",
                shipment=db.session.get(Shipment, pk),
                lines=returnable_lines(order_id),
                warehouses=db.session.execute(select(Warehouse).order_by(Warehouse.priority))
                .scalars()
                .all(),
                typed=request.form,
            )

        return form_page(
            REQUEST_FORM,
            order_id,
            lambda rma: f"return {rma.number} requested",
            RETURN,
            url_for("ShipmentView.show", pk=pk),
            render,
        )

    @expose("/authorize/<int:pk>", methods=["POST"])
    @has_access_audited
    def authorize(self, pk: int):
        return record_action(AUTHORIZE, pk, lambda rma: f"{rma.number} authorized", RETURN)

    @expose("/reject/<int:pk>", methods=["POST"])
    @has_access_audited
    def reject(self, pk: int):
        return record_action(REJECT, pk, lambda rma: f"{rma.number} rejected", RETURN)

    @expose("/receive/<int:pk>", methods=["POST"])
    @has_access_audited
    def receive(self, pk: int):
        return form_on_record(self, RECEIVE_FORM, pk, lambda rma: f"{rma.number} received", RETURN)

    @expose("/credit/<int:pk>", methods=["POST"])
    @has_access_audited
    def credit(self, pk: int):
        return record_action(
            CREDIT,
            pk,
            lambda rma: f"{rma.number} credited; its credit memo awaits approval",
            RETURN,
        )

    @expose("/close/<int:pk>", methods=["POST"])
    @has_access_audited
    def close(self, pk: int):
        return record_action(CLOSE, pk, lambda rma: f"{rma.number} closed", RETURN)


def load_return(pk: int | str) -> ReturnAuthorization | None:
    """The return with its lines, their order lines and products, and its order and
    customer, in a fixed number of queries (however many lines); ``pk`` as FAB's route
    hands it over (text)."""
    return db.session.execute(
        select(ReturnAuthorization)
        .where(ReturnAuthorization.id == int(pk))
        .options(
            selectinload(ReturnAuthorization.lines)
            .selectinload(ReturnLine.order_line)
            .selectinload(OrderLine.product),
            selectinload(ReturnAuthorization.order).selectinload(SalesOrder.customer),
        )
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def register_return_views() -> None:
    """Add Orders → Returns and the return pages' helpers."""
    appbuilder.add_view(ReturnView, "Returns", icon="fa-undo", category="Orders")

    @current_app.context_processor
    def _return_helpers() -> dict[str, Any]:
        return {
            "return_conditions": RETURN_CONDITIONS,
            "load_return": load_return,
            "shipment_returns": shipment_returns,
        }
