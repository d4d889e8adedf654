"""Disputes on invoices: open → investigating → resolved / rejected (DESIGN.md section 3).

A dispute has a type (pricing, shortage, damaged, late_delivery, duplicate_billing, other), an
amount, an owner and a due date set by its type (:data:`portal.models.DISPUTE_TYPES` days after
opening). Resolving needs a root-cause code and the corrective action; a resolution may raise
a credit memo, which is requested by the resolver and then approved like any other. Refused
attempts are audited (see :func:`portal.services.refusals.audited_refusal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import portal.security as security
from portal.models import (
    DISPUTE_TYPES,
    ROOT_CAUSES,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceStatus,
    utcnow,
)
from portal.services import audit, credits, limits, notifications, numbering, states
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
from portal.services.money import parse_amount
from portal.services.refusals import audited_refusal

DISPUTE_VIEW = security.DISPUTES
AGEING_BUCKETS = ((0, 7, "0–7 days"), (8, 30, "8–30 days"), (31, 60, "31–60 days"))
OLDEST_BUCKET = "over 60 days"


def _known_user(username: str) -> bool:
    from portal.extensions import appbuilder

    return appbuilder.sm.find_user(username=username) is not None


def _amount(value: Any) -> Decimal:
    if value in (0, "0", Decimal("0")):
        return Decimal("0.00")
    return parse_amount(value)


def open_dispute(
    invoice: Invoice,
    actor: Actor,
    *,
    dispute_type: str,
    amount: Any,
    description: str | None = None,
    owner: str | None = None,
    opened_at: datetime | None = None,
) -> Dispute:
    """Open a dispute on an issued invoice; due in the days its type allows.

    ``opened_at`` (default now) records a dispute the customer raised earlier (an import, the
    demo's history); it may not be before the invoice's issue date nor in the future.
    """
    with audited_refusal(actor, "invoice", invoice.id, "open_dispute"):
        require(actor, "can_write", DISPUTE_VIEW, "open disputes")
        errors: dict[str, list[str]] = {}
        if dispute_type not in DISPUTE_TYPES:
            errors["dispute_type"] = [f"must be one of {', '.join(DISPUTE_TYPES)}"]
        owner = (owner or actor.name).strip()
        if not _known_user(owner):
            errors["owner"] = [f"{owner} is not a user"]
        try:
            value = _amount(amount)
        except ValidationFailed as error:
            errors.update(error.field_errors)
            value = Decimal("0")
        if value > invoice.total:
            errors["amount"] = [f"is more than the invoice total ({invoice.total})"]
        errors.update(limits.text_errors(description=description))
        errors.update(_opened_at_errors(invoice, opened_at))
        if errors:
            raise ValidationFailed(errors)
        if invoice.status in (InvoiceStatus.DRAFT.value, InvoiceStatus.VOID.value):
            raise ConflictError(f"invoice {invoice} is {invoice.status}; it cannot be disputed")
        with unit_of_work() as sess:
            opened = opened_at or utcnow()
            dispute = Dispute(
                number=numbering.next_number("dispute"),
                invoice_id=invoice.id,
                dispute_type=dispute_type,
                amount=value,
                description=(description or "").strip() or None,
                owner=owner,
                status=DisputeStatus.OPEN.value,
                opened_by=actor.name,
                opened_at=opened,
                due_date=opened.date() + timedelta(days=DISPUTE_TYPES[dispute_type]),
            )
            sess.add(dispute)
            sess.flush()
            audit.record(
                actor,
                "dispute",
                dispute.id,
                "open",
                after={
                    "number": dispute.number,
                    "invoice": invoice.number,
                    "type": dispute_type,
                    "amount": value,
                    "owner": owner,
                    "due_date": dispute.due_date,
                },
            )
    return dispute


def _opened_at_errors(invoice: Invoice, opened_at: datetime | None) -> dict[str, list[str]]:
    if opened_at is None:
        return {}
    if opened_at > utcnow():
        return {"opened_at": ["is in the future"]}
    if invoice.issue_date is not None and opened_at.date() < invoice.issue_date:
        return {"opened_at": [f"is before the invoice's issue date {invoice.issue_date}"]}
    return {}


def _move(
    dispute: Dispute, actor: Actor, target: str, at: datetime | None = None, **fields: Any
) -> None:
    """Move ``dispute`` to ``target`` with ``fields`` (the state machine decides); a closed
    dispute records who closed it and when (``at``, default now; not before it opened)."""
    if target in (DisputeStatus.RESOLVED.value, DisputeStatus.REJECTED.value):
        closed = at or utcnow()
        if closed < dispute.opened_at or closed > utcnow():
            raise ValidationFailed({"closed_at": ["must be between its opening and now"]})
        fields.update(closed_by=actor.name, closed_at=closed)
    states.transition(dispute, target, actor, fields=fields)
    session().flush()


def investigate(dispute: Dispute, actor: Actor, owner: str | None = None) -> Dispute:
    """Start investigating an open dispute (optionally handing it to ``owner``)."""
    with audited_refusal(actor, "dispute", dispute.id, "investigate"):
        require(actor, "can_write", DISPUTE_VIEW, "work on disputes")
        fields: dict[str, Any] = {}
        if owner:
            if not _known_user(owner):
                raise ValidationFailed({"owner": [f"{owner} is not a user"]})
            fields["owner"] = owner
        with unit_of_work():
            _move(dispute, actor, DisputeStatus.INVESTIGATING.value, **fields)
    return dispute


def resolve(
    dispute: Dispute,
    actor: Actor,
    *,
    root_cause: str,
    corrective_action: str,
    note: str | None = None,
    credit_amount: Any = None,
    at: datetime | None = None,
) -> Dispute:
    """Resolve a dispute under investigation; optionally request a credit memo for it.

    ``at`` (default now) is when it was resolved, for a resolution recorded afterwards."""
    with audited_refusal(actor, "dispute", dispute.id, "resolve"):
        require(actor, "can_write", DISPUTE_VIEW, "resolve disputes")
        errors: dict[str, list[str]] = {}
        if root_cause not in ROOT_CAUSES:
            errors["root_cause"] = [f"must be one of {', '.join(ROOT_CAUSES)}"]
        if not (corrective_action or "").strip():
            errors["corrective_action"] = ["is required to resolve a dispute"]
        errors.update(limits.text_errors(corrective_action=corrective_action, note=note))
        if errors:
            raise ValidationFailed(errors)
        if not states.may_resolve(dispute, actor):
            raise PermissionDenied(
                f"{actor.name} opened {dispute.number}: resolving it needs a Supervisor"
            )
        with unit_of_work():
            _move(
                dispute,
                actor,
                DisputeStatus.RESOLVED.value,
                at,
                root_cause=root_cause,
                corrective_action=corrective_action.strip(),
                resolution_note=(note or "").strip() or None,
            )
            if credit_amount not in (None, "", 0):
                credits.request_credit(
                    dispute.invoice,
                    actor,
                    reason_code="dispute",
                    amount=credit_amount,
                    reason_text=f"{dispute.number} ({dispute.dispute_type}): {note or ''}".strip(),
                    dispute=dispute,
                    at=at,
                )
            notifications.notify(dispute.invoice.order, "dispute_resolved", actor, dispute=dispute)
    return dispute


def reject(
    dispute: Dispute,
    actor: Actor,
    *,
    reason: str,
    root_cause: str | None = None,
    at: datetime | None = None,
) -> Dispute:
    """Reject an open or investigated dispute, with the reason (and a root cause if known);
    ``at`` as in :func:`resolve`."""
    with audited_refusal(actor, "dispute", dispute.id, "reject"):
        require(actor, "can_write", DISPUTE_VIEW, "reject disputes")
        errors: dict[str, list[str]] = {}
        if not (reason or "").strip():
            errors["reason"] = ["is required to reject a dispute"]
        if root_cause is not None and root_cause not in ROOT_CAUSES:
            errors["root_cause"] = [f"must be one of {', '.join(ROOT_CAUSES)}"]
        errors.update(limits.text_errors(reason=reason))
        if errors:
            raise ValidationFailed(errors)
        with unit_of_work():
            _move(
                dispute,
                actor,
                DisputeStatus.REJECTED.value,
                at,
                resolution_note=reason.strip(),
                root_cause=root_cause,
            )
    return dispute


class DisputeService(RecordService[Dispute]):
    """Disputes for the generic views and API: create() opens one; edits while not closed."""

    model = Dispute
    entity = "dispute"
    permission_view = DISPUTE_VIEW
    creatable = ("invoice_id", "dispute_type", "amount", "description", "owner")
    editable = ("owner", "amount", "description", "due_date")

    def create(self, data: Mapping[str, Any], actor: Actor) -> Dispute:
        unknown = sorted(set(data) - set(self.creatable))
        if unknown:
            raise ValidationFailed({name: ["unknown or read-only field"] for name in unknown})
        if not data.get("invoice_id"):
            raise ValidationFailed({"invoice_id": ["is required"]})
        return open_dispute(
            invoices.get(data["invoice_id"]),
            actor,
            dispute_type=data.get("dispute_type") or "",
            amount=data.get("amount", 0),
            description=data.get("description"),
            owner=data.get("owner"),
        )

    def update(
        self,
        record: Dispute,
        changes: Mapping[str, Any],
        actor: Actor,
        expected_version: int | None = None,
    ) -> Dispute:
        with audited_refusal(actor, "dispute", record.id, "update"):
            self._require(actor, "can_write")
            if record.is_closed:
                raise ConflictError(f"dispute {record} is {record.status} and cannot change")
            return super().update(record, changes, actor, expected_version)

    def validate(self, sess: Session, record: Dispute, changed: set[str]):
        errors: dict[str, list[str]] = {}
        if "owner" in changed and record.owner and not _known_user(record.owner):
            errors["owner"] = [f"{record.owner} is not a user"]
        if "amount" in changed and record.amount is not None:
            if record.amount < 0:  # its decimal places: table_errors (bounds.places_problem)
                errors["amount"] = ["must be 0 or more"]
            elif record.amount > record.invoice.total:
                errors["amount"] = [f"is more than the invoice total ({record.invoice.total})"]
        return errors


disputes = DisputeService()


@dataclass
class Ageing:
    """Open disputes by age bucket (count and amount) and the overdue ones."""

    buckets: list[tuple[str, int, Decimal]] = field(default_factory=list)
    overdue: list[Dispute] = field(default_factory=list)
    open_count: int = 0


def ageing(today: date | None = None) -> Ageing:
    """Ageing of the disputes still open or under investigation, as of ``today``."""
    today = today or utcnow().date()
    rows = session().execute(
        select(Dispute)
        .where(Dispute.status.in_((DisputeStatus.OPEN.value, DisputeStatus.INVESTIGATING.value)))
        .order_by(Dispute.due_date)
    )
    labels = [label for _, _, label in AGEING_BUCKETS] + [OLDEST_BUCKET]
    counts = dict.fromkeys(labels, 0)
    amounts = dict.fromkeys(labels, Decimal("0.00"))
    result = Ageing()
    for dispute in rows.scalars():
        age = (today - dispute.opened_at.date()).days
        label = next((name for low, high, name in AGEING_BUCKETS if low <= age <= high), None)
        label = label or OLDEST_BUCKET
        counts[label] += 1
        amounts[label] += dispute.amount
        result.open_count += 1
        if dispute.due_date < today:
            result.overdue.append(dispute)
    result.buckets = [(label, counts[label], amounts[label]) for label in labels]
    return result


def set_status(
    dispute: Dispute,
    target: str,
    actor: Actor,
    *,
    root_cause: str | None = None,
    corrective_action: str | None = None,
    reason: str | None = None,
) -> Dispute:
    """Move ``dispute`` to ``target`` (investigating, resolved or rejected) by its status alone.

    ``root_cause`` / ``corrective_action``: ``None`` keeps the dispute's, ``""`` clears it. They
    are set only when the status becomes resolved or rejected: changing them while ``target``
    is the current status is refused. A rejection's reason is the corrective action, else
    ``reason``.
    """
    cause = dispute.root_cause if root_cause is None else (root_cause or None)
    action = dispute.corrective_action if corrective_action is None else (corrective_action or None)
    if target == dispute.status:
        if (cause, action) != (dispute.root_cause, dispute.corrective_action):
            raise ValidationFailed(
                {"root_cause": ["is set when the status becomes resolved or rejected"]}
            )
        return dispute
    if target == DisputeStatus.INVESTIGATING.value:
        return investigate(dispute, actor)
    if target == DisputeStatus.RESOLVED.value:
        return resolve(dispute, actor, root_cause=cause or "", corrective_action=action or "")
    if target == DisputeStatus.REJECTED.value:
        return reject(dispute, actor, reason=action or reason or "", root_cause=cause)
    raise ValidationFailed({"status": ["can become investigating, resolved or rejected"]})


def is_overdue(status: str, due_date: date, today: date) -> bool:
    """Whether a dispute in ``status`` due on ``due_date`` is overdue on ``today``."""
    still_open = status in (DisputeStatus.OPEN.value, DisputeStatus.INVESTIGATING.value)
    return still_open and due_date < today
