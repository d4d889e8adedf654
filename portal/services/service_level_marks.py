"""Marking kept service-level days stale when the records behind their facts change.

Every service-level fact belongs to one order and is dated by one of that order's dates
(order date, promised and requested dates; its shipments' ship, ETA and delivery dates; its
invoices' issue dates; its RMAs', credits' and disputes' days). So when a record of an order
changes, every closed day that order has a date on (and today, once its partial sums are
kept) is marked stale in ``service_level_day``, in the same transaction as the change
(``service_levels_keep`` recomputes those days).
The days come from the database after the change and from the changed records' old values,
so a date moved away from a day marks both days.

Changes reach here three ways: every ORM flush (:func:`register` adds the ``after_flush``
listener), ``base.save_versioned``'s bulk updates (:func:`mark_records`) and the imports'
Core inserts and deletes (:func:`mark_orders`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import event, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from portal.models import (
    Backorder,
    CreditMemo,
    Dispute,
    Invoice,
    OrderLine,
    ReturnAuthorization,
    ReturnLine,
    SalesOrder,
    ServiceLevelDay,
    Shipment,
    ShipmentLine,
    utcnow,
)
from portal.services.service_levels_sql import utc_date

# model → (the attribute that leads to its order, the table that attribute points into,
# its own dates). The link table is None when the attribute is the order's id itself.
ORDER_DATES = ("order_date", "promised_date", "requested_date")
TRACKED: dict[type, tuple[str, Any, tuple[str, ...]]] = {
    SalesOrder: ("id", None, ORDER_DATES),
    OrderLine: ("order_id", None, ()),
    Shipment: ("order_id", None, ("ship_date", "eta", "delivered_date")),
    Invoice: ("order_id", None, ("issue_date",)),
    ReturnAuthorization: ("order_id", None, ("created_at",)),
    ShipmentLine: ("shipment_id", Shipment, ()),
    Backorder: ("order_line_id", OrderLine, ()),
    CreditMemo: ("invoice_id", Invoice, ("decided_at",)),
    Dispute: ("invoice_id", Invoice, ("opened_at", "closed_at", "due_date")),
    ReturnLine: ("rma_id", ReturnAuthorization, ()),
}
CHUNK = 500  # ids per IN list


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date() if value.tzinfo is None else value.astimezone(UTC).date()
    return value if isinstance(value, date) else None


def _values(record: Any, name: str) -> list[Any]:
    """The attribute's value now and, when it changed, before."""
    history = get_history(record, name)
    return [*history.added, *history.unchanged, *history.deleted]


def _order_ids(conn: Connection, links: dict[Any, set[int]]) -> set[int]:
    """Order ids reached from the ids of shipments, order lines, invoices and RMAs."""
    orders = set(links.pop(None, set()))
    for table, ids in links.items():
        ids = sorted(ids)
        for start in range(0, len(ids), CHUNK):
            orders.update(
                conn.execute(
                    select(table.order_id).where(table.id.in_(ids[start : start + CHUNK]))
                ).scalars()
            )
    return orders


def order_days(conn: Connection, order_ids: Iterable[int]) -> set[date]:
    """Every date the orders' facts may be dated by, as the database holds them now."""
    ids = sorted({order_id for order_id in order_ids if order_id is not None})
    days: set[date] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        by_invoice = select(Invoice.id).where(Invoice.order_id.in_(chunk))
        parts = [
            select(getattr(SalesOrder, name).label("d")).where(SalesOrder.id.in_(chunk))
            for name in ORDER_DATES
        ]
        parts += [
            select(column.label("d")).where(Shipment.order_id.in_(chunk))
            for column in (Shipment.ship_date, Shipment.eta, Shipment.delivered_date)
        ]
        parts += [
            select(Invoice.issue_date.label("d")).where(Invoice.order_id.in_(chunk)),
            select(utc_date(ReturnAuthorization.created_at).label("d")).where(
                ReturnAuthorization.order_id.in_(chunk)
            ),
            select(utc_date(CreditMemo.decided_at).label("d")).where(
                CreditMemo.invoice_id.in_(by_invoice)
            ),
            select(utc_date(Dispute.opened_at).label("d")).where(
                Dispute.invoice_id.in_(by_invoice)
            ),
            select(utc_date(Dispute.closed_at).label("d")).where(
                Dispute.invoice_id.in_(by_invoice)
            ),
            select(Dispute.due_date.label("d")).where(Dispute.invoice_id.in_(by_invoice)),
        ]
        for value in conn.execute(union_all(*parts)).scalars():
            if isinstance(value, str):  # SQLite returns computed dates as text
                value = date.fromisoformat(value)
            if value is not None:
                days.add(value)
    return days


def mark_days(conn: Connection, days: Iterable[date]) -> None:
    """Mark the closed ``days`` (before today, UTC) stale, and today when its partial sums are
    kept and not stale yet, in the connection's transaction."""
    today = utcnow().date()
    found = {day for day in map(_day, days) if day is not None}
    table = ServiceLevelDay.__table__
    if today in found:
        # an UPDATE that matches no row locks none: only the first change after a keep of
        # today waits for the row, and no change waits for a stale one
        conn.execute(
            update(table).where(table.c.day == today, table.c.stale.is_(False)).values(stale=True)
        )
    wanted = sorted(day for day in found if day < today)
    if not wanted:
        return
    insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).on_conflict_do_update(
        index_elements=[table.c.day], set_={"stale": True}
    )
    conn.execute(statement, [{"day": day, "stale": True} for day in wanted])


def mark_orders(sess: Session, order_ids: Iterable[int]) -> None:
    """Mark stale every closed day the orders' facts are on (call it after inserting them
    and before deleting them, when they are written without the ORM)."""
    conn = sess.connection()
    mark_days(conn, order_days(conn, order_ids))


def _collect(records: Iterable[Any]) -> tuple[dict[Any, set[int]], set[date]]:
    links: dict[Any, set[int]] = {}
    days: set[date] = set()
    for record in records:
        tracked = TRACKED.get(type(record))
        if tracked is None:
            continue
        link, table, dates = tracked
        for value in _values(record, link):
            if value is not None:
                links.setdefault(table, set()).add(value)
        for name in dates:
            days.update(filter(None, (_day(value) for value in _values(record, name))))
    return links, days


def mark_records(sess: Session, records: Sequence[Any]) -> None:
    """Mark stale the days of the orders of ``records`` (changed, not yet written) and the
    days their dates had and will have."""
    links, days = _collect(records)
    if not links and not days:
        return
    conn = sess.connection()
    mark_days(conn, days | order_days(conn, _order_ids(conn, links)))


def _after_flush(sess: Session, _context: Any) -> None:
    changed = [*sess.new, *sess.dirty, *sess.deleted]
    if any(type(record) in TRACKED for record in changed):
        mark_records(sess, changed)


def register(target: Any) -> None:
    """Mark days stale on every flush of ``target``'s sessions (a Session class, sessionmaker
    or scoped session); the app calls it once at start, again is a no-op."""
    if not event.contains(target, "after_flush", _after_flush):
        event.listen(target, "after_flush", _after_flush)
