"""Gap-free business numbers (SO-000001, INV-000001) taken inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import NumberSequence

PREFIXES = {
    "sales_order": "SO-",
    "shipment": "SH-",
    "invoice": "INV-",
    "credit_memo": "CM-",
    "dispute": "DSP-",
    "rma": "RMA-",
}


def next_number(name: str) -> str:
    """Take the next number of sequence ``name``; rolled back with the transaction."""
    sess = db.session
    taken = sess.execute(
        update(NumberSequence)
        .where(NumberSequence.name == name)
        .values(next_value=NumberSequence.next_value + 1)
        .returning(NumberSequence.next_value, NumberSequence.prefix, NumberSequence.width)
    ).first()
    if taken is None:
        sess.add(NumberSequence(name=name, prefix=PREFIXES.get(name, ""), next_value=2))
        sess.flush()
        value, prefix, width = 1, PREFIXES.get(name, ""), 6
    else:
        value, prefix, width = taken[0] - 1, taken[1], taken[2]
    return f"{prefix}{value:0{width}d}"


def peek(name: str) -> int:
    """The value the next call would take (for tests and the admin page)."""
    row = db.session.execute(
        select(NumberSequence.next_value).where(NumberSequence.name == name)
    ).scalar_one_or_none()
    return row or 1
