"""Business numbers (SO-000001, INV-000001) taken inside the caller's transaction.

Invoices and credit memos are legal documents, so their numbers are gap-free: the counter row
is locked while taken and a rolled-back transaction gives its number back. That lock lasts
until commit, so it also serialises everyone taking the same kind of number. Order, shipment,
RMA and dispute numbers only need to be unique and increasing, so on PostgreSQL they come
from a database sequence instead, which never blocks a concurrent transaction (a rolled-back
transaction skips its number). SQLite serialises writers anyway and uses the counter rows
for every kind.
"""

from __future__ import annotations

from sqlalchemy import func, select, text, update

from portal.extensions import db
from portal.models import NumberSequence

PREFIXES = {
    "sales_order": "SO-",
    "shipment": "SH-",
    "invoice": "INV-",
    "credit_memo": "CM-",
    "dispute": "DSP-",
    "rma": "RMA-",
    "stock_receipt": "GR-",
}
GAP_FREE = frozenset({"invoice", "credit_memo"})
WIDTH = 6


def sequence_name(name: str) -> str:
    """The PostgreSQL sequence behind the numbers of ``name`` (not gap-free kinds)."""
    return f"number_seq_{name}"


def _uses_sequence(name: str) -> bool:
    return name not in GAP_FREE and name in PREFIXES and db.engine.dialect.name == "postgresql"


def next_number(name: str) -> str:
    """Take the next number of ``name``; gap-free kinds give it back on rollback."""
    return next_numbers(name, 1)[0]


def next_numbers(name: str, count: int) -> list[str]:
    """Take the next ``count`` numbers of ``name`` with one statement."""
    sess = db.session
    if _uses_sequence(name):
        values = sess.execute(
            select(func.nextval(sequence_name(name))).select_from(func.generate_series(1, count))
        ).scalars()
        return [f"{PREFIXES[name]}{value:0{WIDTH}d}" for value in sorted(values)]
    taken = sess.execute(
        update(NumberSequence)
        .where(NumberSequence.name == name)
        .values(next_value=NumberSequence.next_value + count)
        .returning(NumberSequence.next_value, NumberSequence.prefix, NumberSequence.width)
    ).first()
    if taken is None:
        sess.add(NumberSequence(name=name, prefix=PREFIXES.get(name, ""), next_value=count + 1))
        sess.flush()
        first, prefix, width = 1, PREFIXES.get(name, ""), WIDTH
    else:
        first, prefix, width = taken[0] - count, taken[1], taken[2]
    return [f"{prefix}{value:0{width}d}" for value in range(first, first + count)]


def peek(name: str) -> int:
    """The value the next call would take (for tests and the admin page)."""
    if _uses_sequence(name):
        last, called = db.session.execute(
            text(f"SELECT last_value, is_called FROM {sequence_name(name)}")
        ).one()
        return last + 1 if called else last
    row = db.session.execute(
        select(NumberSequence.next_value).where(NumberSequence.name == name)
    ).scalar_one_or_none()
    return row or 1
