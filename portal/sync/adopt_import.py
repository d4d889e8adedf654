"""New orders from a tracker's rows, created through the import service (docs/import.md).

The rows of a team's sheet that name an order the portal does not have are history the
team brings: :func:`import_new` hands them to :func:`portal.services.imports.import_table`
(its history path: dates, prices and the team's ids kept as given, no stock taken, every
row's fate with a reason, the run recorded and undoable) instead of entering each as a new
order. Customers and products are found by code or name, never created from a tracker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Customer, Product, SalesOrder
from portal.services.base import Actor
from portal.services.imports import ImportOptions, import_table
from portal.services.imports_fields import MappingProblem
from portal.sync.base import sheet_actor
from sheets.readers import Table
from sheets.trackers import TrackerSpec, header_id

# a tracker's field -> the import's field of the same meaning
IMPORT_FIELDS = {
    "order_ref": "order_ref",
    "customer": "customer_code",
    "customer_name": "customer_name",
    "customer_po": "customer_po",
    "order_date": "order_date",
    "requested_date": "requested_date",
    "promised_date": "promised_date",
    "notes": "notes",
    "sku": "product_code",
    "product": "product_name",
    "quantity": "quantity",
    "unit_price": "unit_price",
    "discount_pct": "discount",
}


# import fields naming a customer or product, and the stored column they are found in
SPELLED = {
    "customer_code": Customer.code,
    "customer_name": Customer.name,
    "product_code": Product.sku,
    "product_name": Product.name,
}


def _spelling(column: Any, texts: set[str]) -> dict[str, str]:
    """upper(text) -> the stored spelling, for the ``texts`` some record carries."""
    wanted = sorted({t.upper() for t in texts})
    found: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        query = select(column).where(func.upper(column).in_(wanted[i : i + 500]))
        for text in db.session.execute(query).scalars():
            found.setdefault(text.upper(), text)
    return found


def _as_stored(fields: Sequence[str], cells: list[tuple[int, list[Any]]]) -> None:
    """Customer and product codes and names written as the portal spells them ("acme ltd"
    finds "Acme Ltd"; the import matches exactly); the sheet keeps its own spelling."""
    for at, name in enumerate(fields):
        if name not in SPELLED:
            continue
        texts = {str(row[at]) for _, row in cells if row[at] not in (None, "")}
        stored = _spelling(SPELLED[name], texts)
        for _, row in cells:
            if row[at] not in (None, ""):
                row[at] = stored.get(str(row[at]).upper(), row[at])


def orders_by_ref(refs: Sequence[str]) -> dict[str, str]:
    """order reference -> number, for the references some order already carries."""
    out: dict[str, str] = {}
    for i in range(0, len(refs), 500):
        query = select(SalesOrder.external_ref, SalesOrder.number).where(
            SalesOrder.external_ref.in_(refs[i : i + 500])
        )
        out.update(dict(db.session.execute(query).all()))
    return out


def _columns(spec: TrackerSpec, header: Sequence[Any]) -> tuple[dict[str, str], list[int]]:
    """The import's mapping (sheet header -> import field) and each header's position; the
    key column is the order id (one row per order) or the line id (one row per line)."""
    where = {header_id(h): i for i, h in enumerate(header)}
    key_field = "line_ref" if spec.kind == "order_lines" else "order_ref"
    mapping = {spec.key_header: key_field}
    positions = [where[header_id(spec.key_header)]]
    for col in spec.columns:
        name, i = IMPORT_FIELDS.get(col.field), where.get(header_id(col.header))
        if name and i is not None and name not in mapping.values() and col.header not in mapping:
            mapping[col.header] = name
            positions.append(i)
    return mapping, positions


def import_new(
    spec: TrackerSpec,
    header: Sequence[Any],
    rows: Mapping[int, Sequence[Any]],
    keys: Mapping[int, str],
    *,
    dry: bool,
    actor: Actor | None = None,
) -> tuple[dict[int, str], dict[int, str]]:
    """Create (``dry``: decide) the orders of ``rows`` (sheet row -> cells, each carrying
    the team key ``keys[row]``) through the import; returns (created, refused) messages."""
    if not rows:
        return {}, {}
    mapping, positions = _columns(spec, header)
    cells = []
    for r in sorted(rows):
        row = rows[r]
        values = [row[i] if i < len(row) else None for i in positions[1:]]
        cells.append((r, [keys[r], *values]))
    _as_stored(list(mapping.values()), cells)
    digest = hashlib.sha256(repr(cells).encode()).hexdigest()
    table = Table(f"tracker {spec.name}", spec.name, 1, list(mapping), iter(cells))
    by_lines = spec.kind == "order_lines"
    options = ImportOptions(
        mapping=mapping,
        dry_run=dry,
        new_customers=False,
        new_products=False,
        lines=by_lines,
        own_line_refs=by_lines,
        source=f"tracker:{spec.name}",
        open_status="draft",  # the team keeps editing its open orders from the sheet
    )
    try:
        result = import_table(table, digest, sheet_actor(spec.name, actor), options)
    except MappingProblem as problem:
        return {}, dict.fromkeys(rows, str(problem))
    made = [row for row in result.rows if row.outcome == "created"]
    numbers = {} if dry else orders_by_ref(sorted({row.order_ref or "" for row in made}))
    created = {
        row.number: (
            f"would be added as order {row.order_ref}"
            if dry
            else f"added as order {numbers.get(row.order_ref or '', row.order_ref)}"
        )
        for row in made
    }
    refused = {
        row.number: row.reason or f"not imported ({row.outcome})"
        for row in result.rows
        if row.outcome != "created"
    }
    return created, refused
