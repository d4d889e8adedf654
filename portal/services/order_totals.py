"""The stored order total: ``sales_order.total`` is the sum of its lines' amounts.

One place keeps it: :func:`refresh` recomputes the totals of the orders named, from their
lines as stored, and writes them in one statement. Every path that changes a line's
quantity, price, cancelled quantity or order, adds a line or removes one reaches it:

- the ORM's flushes, through the session hooks below (a service's ``line.quantity = …``,
  ``order.lines.append(…)``, ``sess.delete(line)``);
- ``base.save_versioned`` when it writes order lines set-based (allocation, sync paste,
  imports' updates and undo);
- the import writer: new orders are inserted with :func:`rows_total` of their new lines,
  and its set-based INSERT and DELETE of lines on stored orders call :func:`refresh`.

Concurrency: :func:`refresh` first locks the orders' rows (``SELECT … FOR UPDATE``, in id
order), then reads the lines with a statement of its own, so under READ COMMITTED it sees
every line change committed by a transaction that refreshed the same order before it; two
edits of different lines of one order (each line optimistically locked by its version)
leave the total equal to the sum of both. The order's own ``version`` is not bumped: a
change of a line is not a stale edit of the order's header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history, set_committed_value

from portal.models import OrderLine, SalesOrder, line_amount

# the line fields an order's total depends on
AMOUNT_FIELDS = ("quantity", "qty_cancelled", "unit_price", "order_id")
PENDING = "order_totals_pending"
CHUNK = 5000


def lines_total(lines: Iterable[OrderLine]) -> Decimal:
    """The total of ``lines`` as they are in memory (before they are written)."""
    return sum(
        (line_amount(ln.quantity, ln.qty_cancelled or 0, ln.unit_price) for ln in lines),
        Decimal("0.00"),
    )


def rows_total(lines: Iterable[Mapping[str, Any]]) -> Decimal:
    """The total of lines given as column values (rows about to be inserted)."""
    return sum(
        (
            line_amount(row["quantity"], row.get("qty_cancelled") or 0, row["unit_price"])
            for row in lines
        ),
        Decimal("0.00"),
    )


def refresh(sess: Session, order_ids: Iterable[int | None]) -> None:
    """Recompute and store the totals of these orders from their stored lines."""
    ids = sorted({i for i in order_ids if i is not None})
    for start in range(0, len(ids), CHUNK):
        _refresh_chunk(sess, ids[start : start + CHUNK])


def _refresh_chunk(sess: Session, ids: list[int]) -> None:
    conn = sess.connection()
    locked = select(SalesOrder.id).where(SalesOrder.id.in_(ids)).order_by(SalesOrder.id)
    existing = list(conn.execute(locked.with_for_update()).scalars())
    if not existing:
        return
    totals = dict.fromkeys(existing, Decimal("0.00"))
    lines = select(
        OrderLine.order_id, OrderLine.quantity, OrderLine.qty_cancelled, OrderLine.unit_price
    ).where(OrderLine.order_id.in_(existing))
    for order_id, quantity, cancelled, price in conn.execute(lines):
        totals[order_id] += line_amount(quantity, cancelled, price)
    table = SalesOrder.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(total=bindparam("new_total"), updated_at=table.c.updated_at)
    )
    conn.execute(statement, [{"row_id": i, "new_total": t} for i, t in totals.items()])
    for order_id, total in totals.items():
        order = sess.identity_map.get(sess.identity_key(SalesOrder, order_id))
        if order is not None:
            set_committed_value(order, "total", total)


def _changes_total(line: OrderLine) -> bool:
    return any(get_history(line, name).has_changes() for name in AMOUNT_FIELDS)


def _order_ids_of(line: OrderLine, *, old: bool = False) -> set[int | None]:
    ids = {line.order_id}
    if old:
        ids.update(get_history(line, "order_id").deleted or ())
    return ids


@event.listens_for(Session, "after_flush")
def _note_flushed_lines(sess: Session, flush_context: Any) -> None:
    """Note the orders whose lines this flush added, changed or removed."""
    pending: set[int | None] = sess.info.setdefault(PENDING, set())
    for record in sess.new:
        if isinstance(record, OrderLine):
            pending.update(_order_ids_of(record))
    for record in sess.dirty:
        if isinstance(record, OrderLine) and _changes_total(record):
            pending.update(_order_ids_of(record, old=True))
    for record in sess.deleted:
        if isinstance(record, OrderLine):
            pending.update(_order_ids_of(record, old=True))


@event.listens_for(Session, "after_flush_postexec")
def _refresh_noted(sess: Session, flush_context: Any) -> None:
    pending = sess.info.pop(PENDING, None)
    if pending:
        refresh(sess, pending)
