"""The state machines of orders, disputes, returns, invoices, credit memos and notifications.

Each kind of record has one :class:`Machine`: its transition table (status → the statuses it
may move to) and its actions (name → the statuses it starts from, the permissions it needs
and, for a few, a rule on the record). :func:`transition` moves a record's status (409
otherwise, saying where it can go; an invoice's balance-derived status is checked with
:func:`check`). :func:`actions` / :func:`can` answer which actions a user may take on a
record now: pages show their buttons from them. The services still check their own inputs
and permissions; the table decides the state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

import portal.security as security
from portal.models import (
    CreditMemo,
    CreditMemoStatus,
    Dispute,
    DisputeStatus,
    ImprovementAction,
    ImprovementStatus,
    Invoice,
    InvoiceStatus,
    Notification,
    NotificationStatus,
    OrderStatus,
    ReturnAuthorization,
    ReturnStatus,
    SalesOrder,
    Shipment,
    ShipmentStatus,
    utcnow,
)
from portal.services import audit
from portal.services.base import (
    Actor,
    AlreadyDecided,
    ConflictError,
    PermissionDenied,
    describe,
    session,
    unit_of_work,
)

Permission = tuple[str, str]
Rule = Callable[[Any, Actor], bool]


@dataclass(frozen=True)
class Action:
    """A user action on a record: where it starts, what it needs, and an optional rule."""

    sources: tuple[str, ...]
    needs: tuple[Permission, ...]
    rule: Rule | None = None


@dataclass(frozen=True)
class Machine:
    """One record kind's statuses, legal moves and actions.

    ``permission`` is needed for any move; ``audit_actions`` names the audit event of a move
    by its target (default ``status``); ``on_move`` sets what a move implies beyond the status.
    """

    label: str
    entity: str
    permission: Permission
    transitions: Mapping[str, frozenset[str]]
    actions: Mapping[str, Action]
    audit_actions: Mapping[str, str] = field(default_factory=dict)
    on_move: Callable[[Any, str, str | None], None] | None = None

    def __post_init__(self) -> None:
        for name, action in self.actions.items():
            unknown = set(action.sources) - set(self.transitions)
            if unknown:
                raise ValueError(f"{self.label} action {name} starts from unknown {unknown}")

    def sources(self, action: str) -> tuple[str, ...]:
        """The statuses ``action`` may be taken from."""
        return self.actions[action].sources


def nothing_shipped(order: SalesOrder, actor: Actor | None = None) -> bool:
    """Whether no unit of the order has shipped (a whole order can still be cancelled)."""
    return not any(line.qty_shipped for line in order.lines)


def voidable(invoice: Invoice, actor: Actor | None = None) -> bool:
    """Whether no credit is pending on the invoice (a draft or an ``issued`` one has nothing
    paid or credited yet: any payment or credit moves it on)."""
    pending = session().execute(
        select(func.count()).where(
            CreditMemo.invoice_id == invoice.id,
            CreditMemo.status == CreditMemoStatus.REQUESTED.value,
        )
    )
    return not pending.scalar_one()


def segregated(memo: CreditMemo, actor: Actor) -> bool:
    """Segregation of duties: a person decides only credits someone else requested."""
    return not actor.is_system and memo.requested_by != actor.name


def not_requester(rma: ReturnAuthorization, actor: Actor) -> bool:
    """Segregation of duties: nobody authorizes a return they requested themselves."""
    return actor.is_system or rma.requested_by != actor.name


RESOLVE_OWN = ("can_resolve_own", security.DISPUTES)


def may_resolve(dispute: Dispute, actor: Actor) -> bool:
    """A dispute someone else opened, or a Supervisor's (``can_resolve_own``) own one."""
    return dispute.opened_by != actor.name or actor.can(*RESOLVE_OWN)


def _hold_reasons(order: SalesOrder, old: str, reason: str | None) -> None:
    if order.status == OrderStatus.ON_HOLD.value:
        order.hold_reasons = reason
    elif old == OrderStatus.ON_HOLD.value:
        order.hold_reasons = None


_O = OrderStatus
_ORDER_WRITE = ("can_write", security.ORDERS)
ORDERS = Machine(
    label="order",
    entity="sales_order",
    permission=_ORDER_WRITE,
    transitions={
        _O.QUOTE: frozenset({_O.DRAFT, _O.CANCELLED}),
        _O.DRAFT: frozenset({_O.ON_HOLD, _O.CONFIRMED, _O.CANCELLED}),
        _O.ON_HOLD: frozenset({_O.DRAFT, _O.CONFIRMED, _O.CANCELLED}),
        _O.CONFIRMED: frozenset({_O.PARTIALLY_ALLOCATED, _O.ALLOCATED, _O.ON_HOLD, _O.CANCELLED}),
        _O.PARTIALLY_ALLOCATED: frozenset(
            {_O.CONFIRMED, _O.ALLOCATED, _O.PARTIALLY_SHIPPED, _O.SHIPPED, _O.CANCELLED}
        ),
        _O.ALLOCATED: frozenset(
            {_O.CONFIRMED, _O.PARTIALLY_ALLOCATED, _O.PARTIALLY_SHIPPED, _O.SHIPPED, _O.CANCELLED}
        ),
        _O.PARTIALLY_SHIPPED: frozenset({_O.SHIPPED}),
        _O.SHIPPED: frozenset({_O.DELIVERED}),
        _O.DELIVERED: frozenset({_O.INVOICED}),
        _O.INVOICED: frozenset({_O.CLOSED}),
        _O.CLOSED: frozenset(),
        _O.CANCELLED: frozenset(),
    },
    actions={
        "confirm": Action((_O.DRAFT, _O.ON_HOLD), (_ORDER_WRITE,)),
        "convert": Action((_O.QUOTE,), (_ORDER_WRITE,)),
        "release": Action((_O.ON_HOLD,), (("can_release", security.ORDERS),)),
        "allocate": Action(
            (_O.CONFIRMED, _O.PARTIALLY_ALLOCATED, _O.PARTIALLY_SHIPPED), (_ORDER_WRITE,)
        ),
        "ship": Action(
            (_O.PARTIALLY_ALLOCATED, _O.ALLOCATED, _O.PARTIALLY_SHIPPED),
            (_ORDER_WRITE, ("can_write", security.SHIPMENTS)),
        ),
        "invoice": Action(
            (_O.PARTIALLY_SHIPPED, _O.SHIPPED, _O.DELIVERED),
            (_ORDER_WRITE, ("can_write", security.INVOICES)),
        ),
        "amend": Action(
            (_O.CONFIRMED, _O.PARTIALLY_ALLOCATED, _O.ALLOCATED, _O.PARTIALLY_SHIPPED),
            (_ORDER_WRITE,),
        ),
        "cancel": Action(
            (_O.QUOTE, _O.DRAFT, _O.ON_HOLD, _O.CONFIRMED, _O.PARTIALLY_ALLOCATED, _O.ALLOCATED),
            (_ORDER_WRITE,),
            nothing_shipped,
        ),
    },
    on_move=_hold_reasons,
)

_D = DisputeStatus
_DISPUTE_WRITE = ("can_write", security.DISPUTES)
DISPUTES = Machine(
    label="dispute",
    entity="dispute",
    permission=_DISPUTE_WRITE,
    transitions={
        _D.OPEN: frozenset({_D.INVESTIGATING, _D.REJECTED}),
        _D.INVESTIGATING: frozenset({_D.RESOLVED, _D.REJECTED}),
        _D.RESOLVED: frozenset(),
        _D.REJECTED: frozenset(),
    },
    actions={
        "investigate": Action((_D.OPEN,), (_DISPUTE_WRITE,)),
        "resolve": Action((_D.INVESTIGATING,), (_DISPUTE_WRITE,), may_resolve),
        "reject": Action((_D.OPEN, _D.INVESTIGATING), (_DISPUTE_WRITE,)),
    },
    audit_actions={
        _D.INVESTIGATING: "investigate",
        _D.RESOLVED: "resolved",
        _D.REJECTED: "rejected",
    },
)

_R = ReturnStatus
_RETURN_WRITE = ("can_write", security.RETURNS)
AUTHORIZE_RETURN = ("can_authorize", security.RETURNS)
RETURNS = Machine(
    label="return",
    entity="return_authorization",
    permission=_RETURN_WRITE,
    transitions={
        _R.REQUESTED: frozenset({_R.AUTHORIZED, _R.REJECTED}),
        _R.AUTHORIZED: frozenset({_R.RECEIVED, _R.REJECTED}),
        _R.RECEIVED: frozenset({_R.CREDITED, _R.CLOSED}),
        _R.CREDITED: frozenset({_R.CLOSED}),
        _R.CLOSED: frozenset(),
        _R.REJECTED: frozenset(),
    },
    actions={
        "authorize": Action((_R.REQUESTED,), (AUTHORIZE_RETURN,), not_requester),
        "reject": Action((_R.REQUESTED, _R.AUTHORIZED), (_RETURN_WRITE,)),
        "receive": Action((_R.AUTHORIZED,), (_RETURN_WRITE,)),
        "credit": Action((_R.RECEIVED,), (_RETURN_WRITE, ("can_write", security.CREDIT_MEMOS))),
        "close": Action((_R.RECEIVED, _R.CREDITED), (_RETURN_WRITE,)),
    },
)

_I = InvoiceStatus
_INVOICE_WRITE = ("can_write", security.INVOICES)
INVOICES = Machine(
    label="invoice",
    entity="invoice",
    permission=_INVOICE_WRITE,
    transitions={
        _I.DRAFT: frozenset({_I.ISSUED, _I.VOID}),
        _I.ISSUED: frozenset({_I.PARTIALLY_PAID, _I.PAID, _I.VOID}),
        _I.PARTIALLY_PAID: frozenset({_I.PAID}),
        _I.PAID: frozenset(),
        _I.VOID: frozenset(),
    },
    actions={
        "issue": Action((_I.DRAFT,), (_INVOICE_WRITE,)),
        "void": Action((_I.DRAFT, _I.ISSUED), (_INVOICE_WRITE,), voidable),
    },
    audit_actions={_I.ISSUED: "issue", _I.VOID: "void"},
)

_C = CreditMemoStatus
_APPROVE = ("can_approve", security.CREDIT_MEMOS)
CREDIT_MEMOS = Machine(
    label="credit memo",
    entity="credit_memo",
    permission=("can_write", security.CREDIT_MEMOS),
    transitions={
        _C.REQUESTED: frozenset({_C.APPROVED, _C.REJECTED}),
        _C.APPROVED: frozenset(),
        _C.REJECTED: frozenset(),
    },
    actions={
        "approve": Action((_C.REQUESTED,), (_APPROVE,), segregated),
        "reject": Action((_C.REQUESTED,), (_APPROVE,), segregated),
    },
    audit_actions={_C.APPROVED: "approve", _C.REJECTED: "reject"},
)

_N = NotificationStatus
# The send job (a system actor) marks messages sent or failed; people only requeue a failed one.
REQUEUE = ("can_requeue", security.NOTIFICATIONS)
NOTIFICATIONS = Machine(
    label="notification",
    entity="notification",
    permission=REQUEUE,
    transitions={
        _N.QUEUED: frozenset({_N.SENT, _N.FAILED}),
        _N.SENT: frozenset(),
        _N.FAILED: frozenset({_N.QUEUED}),
    },
    actions={"requeue": Action((_N.FAILED,), (REQUEUE,))},
    audit_actions={_N.FAILED: "fail", _N.QUEUED: "requeue", _N.SENT: "send"},
)


def _closed_when_done(action: ImprovementAction, old: str, reason: str | None) -> None:
    finished = (ImprovementStatus.DONE.value, ImprovementStatus.DROPPED.value)
    action.closed_at = utcnow() if action.status in finished else None


_IA = ImprovementStatus
_IMPROVEMENT_WRITE = ("can_write", security.IMPROVEMENTS)
IMPROVEMENTS = Machine(
    label="improvement action",
    entity="improvement_action",
    permission=_IMPROVEMENT_WRITE,
    transitions={
        _IA.OPEN: frozenset({_IA.IN_PROGRESS, _IA.DONE, _IA.DROPPED}),
        _IA.IN_PROGRESS: frozenset({_IA.DONE, _IA.DROPPED}),
        _IA.DONE: frozenset({_IA.IN_PROGRESS}),
        _IA.DROPPED: frozenset({_IA.OPEN}),
    },
    actions={
        "start": Action((_IA.OPEN,), (_IMPROVEMENT_WRITE,)),
        "complete": Action((_IA.OPEN, _IA.IN_PROGRESS), (_IMPROVEMENT_WRITE,)),
        "drop": Action((_IA.OPEN, _IA.IN_PROGRESS), (_IMPROVEMENT_WRITE,)),
        "reopen": Action((_IA.DONE, _IA.DROPPED), (_IMPROVEMENT_WRITE,)),
        "measure": Action((_IA.IN_PROGRESS, _IA.DONE), (_IMPROVEMENT_WRITE,)),
    },
    audit_actions={_IA.DONE: "complete", _IA.DROPPED: "drop"},
    on_move=_closed_when_done,
)

_S = ShipmentStatus
_SHIPMENT_WRITE = ("can_write", security.SHIPMENTS)
# Shipments change status only by delivery (``fulfillment.deliver``); the table gives their
# pages the buttons: carrier details and ETA while on the way, then the delivery.
SHIPMENTS = Machine(
    label="shipment",
    entity="shipment",
    permission=_SHIPMENT_WRITE,
    transitions={_S.SHIPPED: frozenset({_S.DELIVERED}), _S.DELIVERED: frozenset()},
    actions={
        "update": Action((_S.SHIPPED,), (_SHIPMENT_WRITE,)),
        "deliver": Action((_S.SHIPPED,), (_SHIPMENT_WRITE,)),
        "request_return": Action((_S.SHIPPED, _S.DELIVERED), (_RETURN_WRITE,)),
    },
)

MACHINES: dict[type, Machine] = {
    Shipment: SHIPMENTS,
    SalesOrder: ORDERS,
    Dispute: DISPUTES,
    ReturnAuthorization: RETURNS,
    Invoice: INVOICES,
    CreditMemo: CREDIT_MEMOS,
    Notification: NOTIFICATIONS,
    ImprovementAction: IMPROVEMENTS,
}


def machine(record: Any) -> Machine:
    """The state machine of ``record``'s kind."""
    return MACHINES[type(record)]


def check(record: Any, to: str) -> None:
    """Refuse (409) moving ``record`` to ``to`` unless its kind's table allows it."""
    kind = machine(record)
    current = record.status
    allowed = kind.transitions.get(current, frozenset())
    if to in allowed:
        return
    where = (
        f"from {current} it can go to {', '.join(sorted(allowed))}"
        if allowed
        else f"it is already {current}, which is final"
    )
    raise ConflictError(
        f"{kind.label} {describe(record)} cannot go from {current} to {to}; {where}"
    )


def check_undecided(record: Any, noun: str, pending: str = "requested") -> None:
    """Refuse (409, :class:`AlreadyDecided`) deciding ``record`` (``noun`` names it) once it
    has left ``pending``: the decision was taken already, so nothing changes and nobody's
    permission is in question."""
    if record.status == pending:
        return
    by = getattr(record, "decided_by", None)
    raise AlreadyDecided(
        f"{noun} was already {record.status.replace('_', ' ')}{f' by {by}' if by else ''};"
        " nothing changed"
    )


def transition(
    record: Any,
    to: str,
    actor: Actor,
    reason: str | None = None,
    *,
    fields: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Any:
    """Move ``record`` to status ``to`` (with ``fields``) and add the audit event.

    Refuses an actor without the kind's write permission (403) and a move the table does not
    allow (409), before anything changes. The event is named by the kind's ``audit_actions``
    and records status and ``fields`` before and after, ``reason`` and ``detail``. Nothing
    is flushed: the caller's unit of work writes the change (batches write many at once).
    """
    kind = machine(record)
    if not actor.can(*kind.permission):
        raise PermissionDenied(f"{actor.name} may not change {kind.label} records")
    check(record, to)
    fields = dict(fields or {})
    old = record.status
    before = {"status": old, **{name: getattr(record, name) for name in fields}}
    notes = {**({"reason": reason} if reason else {}), **(detail or {})}
    with unit_of_work():
        record.status = to
        for name, value in fields.items():
            setattr(record, name, value)
        if kind.on_move is not None:
            kind.on_move(record, old, reason)
        audit.record(
            actor,
            kind.entity,
            record.id,
            kind.audit_actions.get(to, "status"),
            before=before,
            after={"status": to, **fields},
            detail=notes or None,
        )
    return record


def can(record: Any, action: str, actor: Actor) -> bool:
    """Whether ``actor`` may take ``action`` on ``record`` in its current status."""
    step = machine(record).actions[action]
    return (
        record.status in step.sources
        and all(actor.can(*needed) for needed in step.needs)
        and (step.rule is None or step.rule(record, actor))
    )


def actions(record: Any, actor: Actor) -> list[str]:
    """The actions ``actor`` may take on ``record`` now, in the table's order."""
    return [name for name in machine(record).actions if can(record, name, actor)]
