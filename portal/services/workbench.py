"""What each role's home page shows: the work waiting for them (read-only queries).

* a Specialist: their orders needing attention (late, at risk, backordered, on hold) with
  every reason, the holds to fix, and the trackers whose last sync had errors;
* a Supervisor: approvals waiting (credits, returns to authorize, holds) and open sync
  conflicts;
* an Auditor: the latest exports and the last audit-chain verification;
* an Admin: the latest background jobs (queues and failed jobs come from ``jobs.queue``).

"My" orders are those the user entered (their ``create`` event in the audit trail). Each
function runs a fixed number of queries whatever the number of records (lists are capped
at :data:`LIMIT` rows, related rows loaded with them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import joinedload

from portal.models import (
    AuditEvent,
    Backorder,
    BackorderStatus,
    ConflictStatus,
    CreditMemo,
    CreditMemoStatus,
    Invoice,
    JobRun,
    OrderLine,
    OrderStatus,
    PriceOverrideRequest,
    PriceOverrideStatus,
    ReturnAuthorization,
    ReturnStatus,
    SalesOrder,
    Shipment,
    ShipmentStatus,
    SyncConflict,
    SyncRun,
    SyncRunStatus,
    Tracker,
    utcnow,
)
from portal.services.base import Actor, session
from portal.services.tracker_work import visible_query

LIMIT = 20
AT_RISK_DAYS = 2
OPEN_ORDER = (
    OrderStatus.CONFIRMED.value,
    OrderStatus.PARTIALLY_ALLOCATED.value,
    OrderStatus.ALLOCATED.value,
    OrderStatus.PARTIALLY_SHIPPED.value,
)


@dataclass
class OrderAttention:
    """One order needing attention, with every reason."""

    order: SalesOrder
    reasons: list[str] = field(default_factory=list)


def _entered_by(username: str) -> Any:
    """The ids (as text) of the orders ``username`` entered."""
    return select(AuditEvent.entity_id).where(
        AuditEvent.entity == "sales_order",
        AuditEvent.action == "create",
        AuditEvent.actor == username,
    )


def my_attention(username: str, today: date | None = None) -> list[OrderAttention]:
    """The user's orders that are late, at risk, backordered or on hold, each with all its
    reasons, oldest promise first (four queries)."""
    today = today or utcnow().date()
    mine = cast(SalesOrder.id, String).in_(_entered_by(username))
    sess = session()
    late = sess.execute(
        select(Shipment.order_id, Shipment.number, Shipment.eta)
        .join(SalesOrder, Shipment.order_id == SalesOrder.id)
        .where(
            mine,
            Shipment.status == ShipmentStatus.SHIPPED.value,
            Shipment.eta > SalesOrder.promised_date,
        )
    ).all()
    backordered = sess.execute(
        select(OrderLine.order_id, func.sum(Backorder.quantity))
        .join(Backorder, Backorder.order_line_id == OrderLine.id)
        .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
        .where(mine, Backorder.status == BackorderStatus.OPEN.value)
        .group_by(OrderLine.order_id)
    ).all()
    flagged = {order_id for order_id, *_ in late} | {order_id for order_id, _ in backordered}
    orders = (
        sess.execute(
            select(SalesOrder)
            .options(joinedload(SalesOrder.customer))
            .where(
                mine,
                or_(
                    SalesOrder.id.in_(flagged),
                    SalesOrder.status == OrderStatus.ON_HOLD.value,
                    SalesOrder.status.in_(OPEN_ORDER)
                    & (SalesOrder.promised_date <= today + timedelta(days=AT_RISK_DAYS)),
                ),
            )
            .order_by(SalesOrder.promised_date.is_(None), SalesOrder.promised_date, SalesOrder.id)
            .limit(LIMIT)
        )
        .unique()
        .scalars()
        .all()
    )
    found = {order.id: OrderAttention(order) for order in orders}
    for order_id, number, eta in late:
        if order_id in found:
            found[order_id].reasons.append(f"late: shipment {number} arrives {eta}")
    for order in orders:
        item = found[order.id]
        if order.status == OrderStatus.ON_HOLD.value:
            item.reasons.append(f"on hold: {order.hold_reasons or 'no reason recorded'}")
        promised = order.promised_date
        if order.status in OPEN_ORDER and promised is not None:
            if promised < today:
                item.reasons.append(f"overdue: promised for {promised}")
            elif promised <= today + timedelta(days=AT_RISK_DAYS):
                item.reasons.append(f"at risk: promised for {promised}")
    for order_id, units in backordered:
        if order_id in found:
            found[order_id].reasons.append(f"backordered: {units} units waiting for stock")
    return list(found.values())


def tracker_errors(actor: Actor) -> list[SyncRun]:
    """The last sync of each tracker ``actor`` works with (owned, shared; an Admin: all),
    where it failed or left rows in error (two queries)."""
    theirs = visible_query(actor).with_only_columns(Tracker.id).order_by(None)
    latest = (
        select(func.max(SyncRun.id))
        .where(SyncRun.status != SyncRunStatus.RUNNING.value, SyncRun.tracker_id.in_(theirs))
        .group_by(SyncRun.tracker_id)
    )
    return list(
        session()
        .execute(
            select(SyncRun)
            .options(joinedload(SyncRun.tracker))
            .where(
                SyncRun.id.in_(latest),
                or_(SyncRun.status == SyncRunStatus.FAILED.value, SyncRun.errors > 0),
            )
            .order_by(SyncRun.id.desc())
            .limit(LIMIT)
        )
        .scalars()
    )


@dataclass
class Waiting:
    """Records waiting for someone, the first :data:`LIMIT` of them, and how many in all."""

    rows: Sequence[Any]
    total: int


def _waiting(query: Any, count: Any) -> Waiting:
    sess = session()
    return Waiting(sess.execute(query.limit(LIMIT)).unique().scalars().all(), sess.scalar(count))


def credits_waiting() -> Waiting:
    """Requested credits, oldest first, with their invoice and customer."""
    requested = CreditMemo.status == CreditMemoStatus.REQUESTED.value
    return _waiting(
        select(CreditMemo)
        .options(joinedload(CreditMemo.invoice).joinedload(Invoice.customer))
        .where(requested)
        .order_by(CreditMemo.requested_at, CreditMemo.id),
        select(func.count()).select_from(CreditMemo).where(requested),
    )


def returns_waiting(username: str) -> Waiting:
    """Returns waiting for authorization that ``username`` did not request."""
    waiting = (ReturnAuthorization.status == ReturnStatus.REQUESTED.value) & (
        ReturnAuthorization.requested_by != username
    )
    return _waiting(
        select(ReturnAuthorization)
        .options(joinedload(ReturnAuthorization.order).joinedload(SalesOrder.customer))
        .where(waiting)
        .order_by(ReturnAuthorization.id),
        select(func.count()).select_from(ReturnAuthorization).where(waiting),
    )


def price_overrides_waiting(username: str) -> Waiting:
    """Price override requests waiting for a decision that ``username`` did not ask for."""
    waiting = (PriceOverrideRequest.status == PriceOverrideStatus.REQUESTED.value) & (
        PriceOverrideRequest.requested_by != username
    )
    return _waiting(
        select(PriceOverrideRequest)
        .options(
            joinedload(PriceOverrideRequest.order_line)
            .joinedload(OrderLine.order)
            .joinedload(SalesOrder.customer)
        )
        .where(waiting)
        .order_by(PriceOverrideRequest.id),
        select(func.count()).select_from(PriceOverrideRequest).where(waiting),
    )


def holds_waiting() -> Waiting:
    """Orders on hold, oldest first."""
    on_hold = SalesOrder.status == OrderStatus.ON_HOLD.value
    return _waiting(
        select(SalesOrder)
        .options(joinedload(SalesOrder.customer))
        .where(on_hold)
        .order_by(SalesOrder.id),
        select(func.count()).select_from(SalesOrder).where(on_hold),
    )


def conflicts_waiting() -> Waiting:
    """Open sync conflicts, oldest first, with their tracker."""
    still_open = SyncConflict.status == ConflictStatus.OPEN.value
    return _waiting(
        select(SyncConflict)
        .options(joinedload(SyncConflict.tracker))
        .where(still_open)
        .order_by(SyncConflict.id),
        select(func.count()).select_from(SyncConflict).where(still_open),
    )


def recent_exports() -> list[AuditEvent]:
    """The latest exports (their audit events), newest first."""
    return list(
        session()
        .execute(
            select(AuditEvent)
            .where(AuditEvent.action == "export")
            .order_by(AuditEvent.id.desc())
            .limit(LIMIT)
        )
        .scalars()
    )


def recent_jobs(name: str | None = None, limit: int = LIMIT) -> list[JobRun]:
    """The latest background job runs (of job ``name``), newest first."""
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if name is not None:
        query = query.where(JobRun.name == name)
    return list(session().execute(query).scalars())
