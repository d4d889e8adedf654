"""Credit memos: requested against an open invoice, approved or rejected by a Supervisor.

A memo asks for an amount (or invoice lines with their tax) no larger than the invoice's open
balance; a Supervisor who did not request it approves it within their approval limit, which
applies it to the balance, or rejects it with a reason. The state machine
(:data:`portal.services.states.CREDIT_MEMOS`) decides which moves are legal; refused attempts
are audited (:mod:`portal.services.refusals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, select

import portal.security as security
from portal.models import (
    CREDIT_REASONS,
    CreditMemo,
    CreditMemoLine,
    CreditMemoStatus,
    Dispute,
    Invoice,
    InvoiceLine,
    utcnow,
)
from portal.services import audit, notifications, numbering, states
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    RecordService,
    ValidationFailed,
    require,
    session,
    unit_of_work,
)
from portal.services.invoices import invoices
from portal.services.money import OPEN_STATUSES, lock_invoice, money, parse_amount, reload, settle
from portal.services.refusals import audited_refusal

CREDIT_VIEW = security.CREDIT_MEMOS


def credited_quantity(invoice_line_id: int) -> int:
    """Units of an invoice line on credit memos that are requested or approved."""
    return int(
        session()
        .execute(
            select(func.coalesce(func.sum(CreditMemoLine.quantity), 0))
            .join(CreditMemo, CreditMemoLine.credit_memo_id == CreditMemo.id)
            .where(
                CreditMemoLine.invoice_line_id == invoice_line_id,
                CreditMemo.status != CreditMemoStatus.REJECTED.value,
            )
        )
        .scalar_one()
    )


def pending_amount(invoice_id: int) -> Decimal:
    """The total of the invoice's credits still waiting for a decision."""
    total = (
        session()
        .execute(
            select(func.coalesce(func.sum(CreditMemo.amount), 0)).where(
                CreditMemo.invoice_id == invoice_id,
                CreditMemo.status == CreditMemoStatus.REQUESTED.value,
            )
        )
        .scalar_one()
    )
    return money(Decimal(str(total)))


def available_to_credit(invoice: Invoice) -> Decimal:
    """The open balance less the credits pending on it: what a new request may take."""
    return invoice.balance - pending_amount(invoice.id)


CreditItem = tuple[InvoiceLine, int, Decimal]


def _credit_lines(invoice: Invoice, lines: Mapping[int, int]) -> list[CreditItem]:
    """Each credited invoice line with its quantity and value (net plus its tax, in cents)."""
    by_id = {line.id: line for line in invoice.lines}
    errors: list[str] = []
    result: list[CreditItem] = []
    for line_id, quantity in lines.items():
        line = by_id.get(line_id)
        if line is None:
            errors.append(f"line {line_id} is not on {invoice}")
            continue
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            errors.append(f"line {line.line_no}: quantity must be a whole number above 0")
            continue
        left = line.quantity - credited_quantity(line.id)
        if quantity > left:
            errors.append(f"line {line.line_no}: only {left} units are left to credit")
            continue
        net = money(Decimal(quantity) * line.unit_price)
        result.append((line, quantity, net + money(net * invoice.tax_rate)))
    if errors:
        raise ValidationFailed({"lines": errors})
    return result


def request_credit(
    invoice: Invoice,
    actor: Actor,
    *,
    reason_code: str,
    amount: Any = None,
    lines: Mapping[int, int] | None = None,
    reason_text: str | None = None,
    dispute: Dispute | None = None,
    at: datetime | None = None,
) -> CreditMemo:
    """Request a credit against an issued invoice, by amount or by invoice lines.

    ``at`` (default now) is when it was requested, for a request recorded afterwards (an
    import, the demo's history); not in the future.

    The amount (or the lines' value with their tax) may not exceed the invoice's open balance
    less the credits already requested on it (pending credits reserve the balance).
    The memo waits for a Supervisor who is not the requester (see :func:`approve`).
    """
    invoice_id = invoice.id
    with audited_refusal(actor, "invoice", invoice_id, "request_credit"):
        require(actor, "can_write", CREDIT_VIEW, "request credit memos")
        errors: dict[str, list[str]] = {}
        if reason_code not in CREDIT_REASONS:
            errors["reason_code"] = [f"must be one of {', '.join(CREDIT_REASONS)}"]
        if (amount is None) == (not lines):
            errors["amount"] = ["give either an amount or lines to credit, not both"]
        if at is not None and at > utcnow():
            errors["requested_at"] = ["is in the future"]
        if errors:
            raise ValidationFailed(errors)
        with unit_of_work() as sess:
            invoice = lock_invoice(invoice_id)
            if invoice.status not in OPEN_STATUSES:
                raise ConflictError(
                    f"invoice {invoice} is {invoice.status}; only an open invoice can be credited"
                )
            credit_lines = _credit_lines(invoice, lines) if lines else []
            value = (
                sum((item[2] for item in credit_lines), Decimal("0.00"))
                if credit_lines
                else parse_amount(amount)
            )
            pending = pending_amount(invoice.id)
            if value > invoice.balance - pending:
                held = f", less {pending} of credits awaiting approval" if pending else ""
                raise ValidationFailed(
                    {"amount": [f"{value} is more than the open balance ({invoice.balance}{held})"]}
                )
            memo = CreditMemo(
                number=numbering.next_number("credit_memo"),
                invoice_id=invoice.id,
                dispute_id=dispute.id if dispute else None,
                status=CreditMemoStatus.REQUESTED.value,
                reason_code=reason_code,
                reason_text=(reason_text or "").strip()[:400] or None,
                amount=value,
                requested_by=actor.name,
                requested_at=at or utcnow(),
            )
            for line, quantity, line_amount in credit_lines:
                memo.lines.append(
                    CreditMemoLine(invoice_line_id=line.id, quantity=quantity, amount=line_amount)
                )
            sess.add(memo)
            sess.flush()
            audit.record(
                actor,
                "credit_memo",
                memo.id,
                "request",
                after={
                    "number": memo.number,
                    "invoice": invoice.number,
                    "amount": value,
                    "reason_code": reason_code,
                    "lines": {item[0].line_no: item[1] for item in credit_lines} or None,
                    "dispute": dispute.number if dispute else None,
                },
            )
    return memo


def approval_limit(actor: Actor) -> Decimal | None:
    """The largest credit ``actor`` may approve (``None``: no limit, Admin).

    The per-role limits are :data:`portal.security.APPROVAL_LIMITS`; the optional setting
    ``CREDIT_APPROVAL_USER_LIMITS`` (username → amount) overrides them for single users.
    """
    if actor.is_admin:
        return None
    per_user = current_app.config.get("CREDIT_APPROVAL_USER_LIMITS") or {}
    if actor.name in per_user:
        return Decimal(str(per_user[actor.name]))
    from portal.extensions import appbuilder

    user = appbuilder.sm.get_user_by_id(actor.user_id) if actor.user_id else None
    limits = [
        security.APPROVAL_LIMITS[role.name]
        for role in (user.roles if user else [])
        if role.name in security.APPROVAL_LIMITS
    ]
    return max(limits, default=Decimal("0.00"))


def _decide(
    memo: CreditMemo, actor: Actor, approve: bool, note: str | None, at: datetime | None = None
) -> CreditMemo:
    memo_id = memo.id
    action = "approve" if approve else "reject"
    with audited_refusal(actor, "credit_memo", memo_id, action):
        if actor.is_system or not actor.can("can_approve", CREDIT_VIEW):
            raise PermissionDenied(f"{actor.name} may not approve or reject credit memos")
        note = (note or "").strip()[:400] or None
        if not approve and not note:
            raise ValidationFailed({"reason": ["is required to reject a credit memo"]})
        with unit_of_work() as sess:
            invoice = lock_invoice(reload(CreditMemo, memo_id).invoice_id)
            memo = reload(CreditMemo, memo_id)
            decided = CreditMemoStatus.APPROVED if approve else CreditMemoStatus.REJECTED
            states.check_undecided(memo, f"credit memo {memo}")
            states.check(memo, decided.value)
            if not states.segregated(memo, actor):
                raise PermissionDenied(
                    f"segregation of duties: {actor.name} requested {memo} and may not {action} it"
                )
            if approve:
                limit = approval_limit(actor)
                if limit is not None and memo.amount > limit:
                    raise PermissionDenied(
                        f"{memo} for {memo.amount} is above {actor.name}'s approval limit of "
                        f"{limit}; it needs an approver with a higher limit (Admin)"
                    )
                if invoice.status not in OPEN_STATUSES or memo.amount > invoice.balance:
                    raise ConflictError(
                        f"{memo} for {memo.amount} would take invoice {invoice} below zero "
                        f"(balance {invoice.balance}, {invoice.status})"
                    )
                balance_before = invoice.balance
                invoice.amount_credited += memo.amount
                settle(invoice)
            states.transition(
                memo,
                decided.value,
                actor,
                fields={
                    "decided_by": actor.name,
                    "decided_at": _decided_at(memo, at),
                    "decision_note": note,
                },
                detail={"amount": memo.amount, "invoice": invoice.number},
            )
            sess.flush()
            if approve:
                notifications.notify(invoice.order, "credit_approved", actor, memo=memo)
                audit.record(
                    actor,
                    "invoice",
                    invoice.id,
                    "credit_applied",
                    before={"balance": balance_before},
                    after={
                        "balance": invoice.balance,
                        "amount_credited": invoice.amount_credited,
                        "status": invoice.status,
                    },
                    detail={"credit_memo": memo.number},
                )
    return memo


def _decided_at(memo: CreditMemo, at: datetime | None) -> datetime:
    """When the decision was taken: ``at`` (a decision recorded afterwards) or now."""
    if at is None:
        return utcnow()
    if at < memo.requested_at or at > utcnow():
        raise ValidationFailed({"decided_at": ["must be between the request and now"]})
    return at


def approve(
    memo: CreditMemo, actor: Actor, note: str | None = None, at: datetime | None = None
) -> CreditMemo:
    """Approve a requested credit and apply it to the invoice balance.

    Refused unless ``actor`` holds ``can_approve`` on credit memos, did not request it, has an
    approval limit covering the amount, and the locked invoice's balance still covers it.
    """
    return _decide(memo, actor, True, note, at)


def reject(memo: CreditMemo, actor: Actor, reason: str, at: datetime | None = None) -> CreditMemo:
    """Reject a requested credit with a reason (same role and segregation rules)."""
    return _decide(memo, actor, False, reason, at)


class CreditMemoService(RecordService[CreditMemo]):
    """Credit memos for the generic views and API: create() requests a credit by amount."""

    model = CreditMemo
    entity = "credit_memo"
    permission_view = CREDIT_VIEW
    creatable = ("invoice_id", "reason_code", "reason_text", "amount")

    def create(self, data: Mapping[str, Any], actor: Actor) -> CreditMemo:
        unknown = sorted(set(data) - set(self.creatable))
        if unknown:
            raise ValidationFailed({name: ["unknown or read-only field"] for name in unknown})
        if not data.get("invoice_id"):
            raise ValidationFailed({"invoice_id": ["is required"]})
        return request_credit(
            invoices.get(data["invoice_id"]),
            actor,
            reason_code=data.get("reason_code") or "",
            amount=data.get("amount"),
            reason_text=data.get("reason_text"),
        )

    def update(self, record: CreditMemo, changes: Mapping[str, Any], actor: Actor, *args: Any):
        raise ConflictError("a credit memo is approved or rejected, never edited")


credit_memos = CreditMemoService()
