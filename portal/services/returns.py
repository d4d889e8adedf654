"""Returns (RMA): requested → authorized → received (restocked or scrapped) → credited → closed.

Received units in ``restock`` condition go back on hand through the inventory ledger; scrapped
units are recorded on the line but never re-enter stock. :func:`credit` requests the credit
memo for the received units against the invoice that billed them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    RETURN_CONDITIONS,
    Invoice,
    InvoiceLine,
    MovementKind,
    ReturnAuthorization,
    ReturnLine,
    ReturnStatus,
    SalesOrder,
    utcnow,
)
from portal.services import audit, credits, inventory, numbering, orders, states
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    ValidationFailed,
    require,
    unit_of_work,
)
from portal.services.money import OPEN_STATUSES

RETURN_VIEW = "ReturnAuthorization"


def _pending_returns(line_id: int) -> int:
    """Units of a line on open (not yet received or rejected) RMAs."""
    return sum(
        row.quantity
        for row in db.session.query(ReturnLine)
        .join(ReturnAuthorization)
        .filter(
            ReturnLine.order_line_id == line_id,
            ReturnAuthorization.status.in_(
                (ReturnStatus.REQUESTED.value, ReturnStatus.AUTHORIZED.value)
            ),
        )
    )


def request_return(
    order: SalesOrder,
    actor: Actor,
    *,
    lines: Mapping[int, int],
    reason: str,
    warehouse_id: int,
    at: datetime | None = None,
) -> ReturnAuthorization:
    """Open an RMA for shipped units of the order's lines (requested ``at``, default now)."""
    require(actor, "can_write", RETURN_VIEW, "request returns")
    errors: dict[str, list[str]] = {}
    if not (reason or "").strip():
        errors["reason"] = ["is required"]
    if not lines:
        errors["lines"] = ["give at least one line and quantity"]
    if at is not None and at > utcnow():
        errors["created_at"] = ["is in the future"]
    by_id = {line.id: line for line in order.lines}
    problems = orders.line_quantity_errors(
        order,
        lines,
        lambda line: line.qty_shipped - line.qty_returned - _pending_returns(line.id),
        "only {limit} shipped units can be returned",
    )
    if problems:
        errors.setdefault("lines", []).extend(problems)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        rma = ReturnAuthorization(
            number=numbering.next_number("rma"),
            order_id=order.id,
            warehouse_id=warehouse_id,
            status=ReturnStatus.REQUESTED.value,
            reason=reason.strip(),
            requested_by=actor.name,
            created_at=at or utcnow(),
        )
        db.session.add(rma)
        for line_id, quantity in lines.items():
            rma.lines.append(ReturnLine(order_line_id=line_id, quantity=quantity))
        db.session.flush()
        audit.record(
            actor,
            "return_authorization",
            rma.id,
            "create",
            after={
                "number": rma.number,
                "order": order.number,
                "reason": rma.reason,
                "lines": {by_id[k].line_no: v for k, v in lines.items()},
            },
        )
    return rma


def authorize(rma: ReturnAuthorization, actor: Actor) -> ReturnAuthorization:
    """Authorize a requested return: a Supervisor (``can_authorize``), never its requester."""
    require(actor, *states.AUTHORIZE_RETURN, "authorize returns")
    if not states.not_requester(rma, actor):
        raise PermissionDenied(
            f"segregation of duties: {actor.name} requested {rma.number} and may not authorize it"
        )
    states.check_undecided(rma, f"return {rma.number}")
    with unit_of_work():
        states.transition(rma, ReturnStatus.AUTHORIZED.value, actor)
    return rma


def reject(rma: ReturnAuthorization, actor: Actor) -> ReturnAuthorization:
    require(actor, "can_write", RETURN_VIEW, "reject returns")
    if rma.status == ReturnStatus.REJECTED.value:
        states.check_undecided(rma, f"return {rma.number}")
    with unit_of_work():
        states.transition(rma, ReturnStatus.REJECTED.value, actor)
    return rma


def receive(
    rma: ReturnAuthorization, actor: Actor, received: Mapping[int, tuple[int, str]]
) -> ReturnAuthorization:
    """Book the goods that came back: ``{return_line_id: (quantity, "restock"|"scrap")}``."""
    require(actor, "can_write", RETURN_VIEW, "receive returns")
    states.check(rma, ReturnStatus.RECEIVED.value)
    by_id = {line.id: line for line in rma.lines}
    errors: list[str] = []
    for line_id, (quantity, condition) in received.items():
        line = by_id.get(line_id)
        if line is None:
            errors.append(f"return line {line_id} is not on {rma.number}")
        elif condition not in RETURN_CONDITIONS:
            errors.append(f"condition must be one of {', '.join(RETURN_CONDITIONS)}")
        elif not isinstance(quantity, int) or not 0 < quantity <= line.quantity:
            errors.append(f"return line {line_id}: between 1 and {line.quantity} units")
    if errors or not received:
        raise ValidationFailed({"received": errors or ["nothing received"]})
    with unit_of_work():
        for line_id, (quantity, condition) in received.items():
            line = by_id[line_id]
            line.received_quantity = quantity
            line.condition = condition
            line.order_line.qty_returned += quantity
            if condition == "restock":
                level = inventory.stock_level(
                    line.order_line.product_id, rma.warehouse_id, lock=True
                )
                inventory.move(
                    level, MovementKind.RETURN, actor, on_hand_delta=quantity, reference=rma.number
                )
        states.transition(rma, ReturnStatus.RECEIVED.value, actor)
    return rma


def credit(
    rma: ReturnAuthorization, actor: Actor, at: datetime | None = None
) -> ReturnAuthorization:
    """Request the credit memo for the received units against the invoices that billed them.

    The credit follows the normal approval by a Supervisor; the RMA links to it.
    """
    require(actor, "can_write", RETURN_VIEW, "credit returns")
    states.check(rma, ReturnStatus.CREDITED.value)
    wanted = {line.order_line_id: line.received_quantity for line in rma.lines}
    invoice_lines = (
        db.session.execute(
            select(InvoiceLine)
            .join(Invoice, InvoiceLine.invoice_id == Invoice.id)
            .where(
                InvoiceLine.order_line_id.in_(wanted),
                Invoice.status.in_(OPEN_STATUSES),
            )
            .order_by(Invoice.id)
        )
        .scalars()
        .all()
    )
    if not invoice_lines:
        raise ConflictError(f"nothing of {rma.number} is on an open invoice to credit")
    invoice = invoice_lines[0].invoice
    lines = {}
    for item in invoice_lines:
        if item.invoice_id == invoice.id and wanted.get(item.order_line_id):
            take = min(wanted[item.order_line_id], item.quantity)
            lines[item.id] = take
            wanted[item.order_line_id] -= take
    with unit_of_work():
        memo = credits.request_credit(
            invoice,
            actor,
            reason_code="returned_goods",
            lines=lines,
            reason_text=f"{rma.number}: {rma.reason}",
            at=at,
        )
        rma.credit_memo_id = memo.id
        states.transition(rma, ReturnStatus.CREDITED.value, actor)
    return rma


def close(rma: ReturnAuthorization, actor: Actor) -> ReturnAuthorization:
    """Close a received (or credited) return."""
    require(actor, "can_write", RETURN_VIEW, "close returns")
    with unit_of_work():
        states.transition(rma, ReturnStatus.CLOSED.value, actor)
    return rma
