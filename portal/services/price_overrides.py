"""Price override requests: a Specialist asks for a line price other than the price list's,
with a reason; a Supervisor (never the requester) approves or rejects it, with a reason.

The line's price changes only on approval, and then counts as an approved override for the
``price`` check. One open request per line at a time; every step is audited.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import OrderLine, PriceOverrideRequest, PriceOverrideStatus, utcnow
from portal.services import audit, orders, states
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    ValidationFailed,
    check_version,
    unit_of_work,
)
from portal.services.bounds import entered_value_problem
from portal.services.refusals import audited_refusal

ENTITY = "price_override_request"
REASON_LENGTH = PriceOverrideRequest.__table__.c.reason.type.length


def _reason(reason: Any, name: str, why: str) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed({name: [why]})
    if len(text) > REASON_LENGTH:
        raise ValidationFailed({name: [f"is longer than {REASON_LENGTH} characters"]})
    return text


def open_request(line: OrderLine) -> PriceOverrideRequest | None:
    """The line's request awaiting a decision, if any."""
    return db.session.execute(
        select(PriceOverrideRequest).where(
            PriceOverrideRequest.order_line_id == line.id,
            PriceOverrideRequest.status == PriceOverrideStatus.REQUESTED.value,
        )
    ).scalar_one_or_none()


def request_price(
    line: OrderLine, actor: Actor, unit_price: Any, reason: Any
) -> PriceOverrideRequest:
    """Ask for ``unit_price`` on ``line`` (a quote, draft or held order), saying why."""
    orders.orders._require(actor, "can_write")
    errors: dict[str, list[str]] = {}
    if isinstance(unit_price, bool) or not isinstance(unit_price, Decimal | int):
        errors["unit_price"] = ["must be a decimal amount such as 12.50"]
    elif unit_price < 0:
        errors["unit_price"] = ["must not be negative"]
    elif problem := entered_value_problem(OrderLine.__table__.c.unit_price, unit_price):
        errors["unit_price"] = [problem]
    if errors:
        raise ValidationFailed(errors)
    text = _reason(reason, "reason", "say why the price differs from the price list")
    order = line.order
    if order.status not in orders.EDITABLE_STATUSES:
        raise ConflictError(f"order {order.number} is {order.status.replace('_', ' ')}")
    if Decimal(unit_price) == line.unit_price:
        raise ValidationFailed({"unit_price": [f"is the line's price already ({line.unit_price})"]})
    if open_request(line) is not None:
        raise ConflictError(f"line {line.line_no} of {order.number} already awaits a decision")
    with unit_of_work() as sess:
        request = PriceOverrideRequest(
            order_line=line,
            order_line_id=line.id,
            requested_price=Decimal(unit_price),
            price_before=line.unit_price,
            reason=text,
            status=PriceOverrideStatus.REQUESTED.value,
            requested_by=actor.name,
            requested_at=utcnow(),
        )
        sess.add(request)
        audit.record(
            actor,
            ENTITY,
            request,
            "request",
            after={"line": repr(line), "unit_price": request.requested_price},
            detail={"reason": text, "price_before": line.unit_price},
        )
    return request


def _decide(
    request: PriceOverrideRequest,
    actor: Actor,
    reason: Any,
    expected_version: int | None,
    status: str,
) -> PriceOverrideRequest:
    if not actor.can("can_override_price", orders.ORDER_VIEW):
        raise PermissionDenied(f"{actor.name} may not decide price overrides")
    if request.requested_by == actor.name:
        raise PermissionDenied(f"{actor.name} requested this price and may not decide it")
    states.check_undecided(request, f"the price request for {request.order_line}")
    check_version(request, expected_version)
    text = _reason(reason, "reason", "say why")
    line = request.order_line
    approve = status == PriceOverrideStatus.APPROVED.value
    if approve and line.order.status not in orders.EDITABLE_STATUSES:
        raise ConflictError(f"order {line.order.number} is {line.order.status.replace('_', ' ')}")
    with unit_of_work():
        request.status = status
        request.decided_by = actor.name
        request.decided_at = utcnow()
        request.decision_reason = text
        if approve:
            line.unit_price = request.requested_price
            line.price_override_by = actor.name
            line.price_override_reason = f"{request.reason} (approved: {text})"[:200]
            audit.record(
                actor,
                "order_line",
                line.id,
                "price_override",
                before={"unit_price": request.price_before},
                after={"unit_price": line.unit_price, "approved_by": actor.name},
                detail={"reason": text, "request": request.id},
            )
        audit.record(
            actor,
            ENTITY,
            request.id,
            "approve" if approve else "reject",
            after={"status": status},
            detail={"reason": text},
        )
    return request


def approve(
    request: PriceOverrideRequest, actor: Actor, reason: Any, expected_version: int | None = None
) -> PriceOverrideRequest:
    """A Supervisor approves: the line takes the requested price (audited with the reason)."""
    with audited_refusal(actor, ENTITY, request.id, "approve"):
        return _decide(request, actor, reason, expected_version, PriceOverrideStatus.APPROVED.value)


def reject(
    request: PriceOverrideRequest, actor: Actor, reason: Any, expected_version: int | None = None
) -> PriceOverrideRequest:
    """A Supervisor rejects: the line keeps its price; the reason is recorded."""
    with audited_refusal(actor, ENTITY, request.id, "reject"):
        return _decide(request, actor, reason, expected_version, PriceOverrideStatus.REJECTED.value)


def pending(limit: int = 200) -> list[PriceOverrideRequest]:
    """Requests awaiting a decision, oldest first (with their lines, orders and products)."""
    return list(
        db.session.execute(
            select(PriceOverrideRequest)
            .where(PriceOverrideRequest.status == PriceOverrideStatus.REQUESTED.value)
            .options(
                joinedload(PriceOverrideRequest.order_line).joinedload(OrderLine.order),
                joinedload(PriceOverrideRequest.order_line).joinedload(OrderLine.product),
            )
            .order_by(PriceOverrideRequest.id)
            .limit(limit)
        ).scalars()
    )
