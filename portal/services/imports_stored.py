"""Cancellation and return rows that refer to an order already stored (issue 13).

A row with a negative quantity (or under a "C" invoice) whose order is not in the file is
looked for among the stored orders, by the same rules as within one file: the order whose
external reference is the row's order id (without the cancellation prefix), else the same
customer's latest stored order on or before the row's date that has the product with units
left. On a shipped, delivered or invoiced order the units become returned, on an open one
cancelled (only units neither allocated nor shipped; an open order with every unit cancelled
becomes ``cancelled``). Each applied row is noted (``import_record`` entity ``cancel_row``,
keyed by the row's order id, product, quantity and date), so the same row in a later file is
``unchanged``, and the stored order's own file imported again keeps the units it lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import Customer, ImportRecord, ImportRun, OrderLine, SalesOrder
from portal.services.base import save_versioned, unit_of_work
from portal.services.imports_plan import HEADER_FIELDS, LINE_FIELDS, existing_orders
from portal.services.imports_rows import SHIPPED_STATUSES, Row
from portal.services.imports_write import record_rows, snapshot

APPLIED = "cancel_row"


@dataclass
class StoredCancel:
    """A row to apply: ``quantity`` more units of ``line`` in ``field``."""

    row: Row
    key: str
    line: OrderLine
    field: str
    quantity: int


def row_key(row: Row) -> str:
    values = row.values
    product = values.get("product_code") or values.get("product_name")
    parts = (values["order_ref"], product, values["quantity"], values.get("order_date"))
    return "|".join(str(part) for part in parts)


def applied_rows() -> list[tuple[int, str, str, int]]:
    """Every applied row of an import that stands: (line id, key, field, quantity)."""
    query = (
        select(ImportRecord.entity_id, ImportRecord.before)
        .join(ImportRun, ImportRun.id == ImportRecord.run_id)
        .where(ImportRecord.entity == APPLIED, ImportRun.status == "done")
    )
    return [(line_id, *json.loads(before)) for line_id, before in db.session.execute(query)]


def applied_by_line(line_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Units applied to these stored lines by rows of other files, by field."""
    wanted = set(line_ids)
    found: dict[int, dict[str, int]] = {}
    for line_id, _key, field, quantity in applied_rows() if wanted else []:
        if line_id in wanted:
            by_field = found.setdefault(line_id, {})
            by_field[field] = by_field.get(field, 0) + quantity
    return found


def keep_applied(
    stored: SalesOrder, header: dict[str, Any], lines: Mapping[str, dict[str, Any]]
) -> None:
    """The file's values for a stored order, with the units other files' rows took off it."""
    by_ref = {line.external_ref: line.id for line in stored.lines}
    applied = applied_by_line(list(by_ref.values()))
    if not applied:
        return
    for ref, values in lines.items():
        for field, quantity in applied.get(by_ref.get(ref, -1), {}).items():
            values[field] += quantity
    if header["status"] == "confirmed" and all(
        v["qty_cancelled"] >= v["quantity"] for v in lines.values()
    ):
        header["status"] = "cancelled"


def _candidates(row: Row, ref: str) -> list[SalesOrder]:
    found = existing_orders([ref]).get(ref)
    if found is not None:
        return [found]
    customer, when = row.values.get("customer_code"), row.values.get("order_date")
    if customer is None or when is None:
        return []
    query = (
        select(SalesOrder)
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .where(Customer.code == str(customer), SalesOrder.order_date <= when)
        .order_by(SalesOrder.order_date.desc(), SalesOrder.id.desc())
    )
    return list(db.session.scalars(query))


def _units_left(line: OrderLine, field: str, taken: int) -> int:
    if field == "qty_returned":
        return line.qty_shipped - line.qty_returned - taken
    busy = line.qty_cancelled + line.qty_shipped + line.qty_allocated + taken
    return line.quantity - busy


def _match(
    row: Row, ref: str, pending: dict[tuple[int, str], int]
) -> tuple[SalesOrder, OrderLine, str] | None:
    code = row.values.get("product_code") or row.values.get("product_name")
    wanted = abs(row.values["quantity"])
    for order in _candidates(row, ref):
        if order.status in ("draft", "quote", "cancelled"):
            continue
        field = "qty_returned" if order.status in SHIPPED_STATUSES else "qty_cancelled"
        for line in order.lines:
            if code not in (line.product.sku, line.product.name):
                continue
            if _units_left(line, field, pending.get((line.id, field), 0)) >= wanted:
                return order, line, field
    return None


def plan_stored(rows: Sequence[Row], cancel_prefix: str | None) -> list[StoredCancel]:
    """Decide the rows that refer to no order of the file; mark each row's outcome."""
    applied = {key for _line, key, _field, _qty in applied_rows()} if rows else set()
    pending: dict[tuple[int, str], int] = {}
    plan: list[StoredCancel] = []
    for row in rows:
        ref = row.values["order_ref"]
        if cancel_prefix and ref.startswith(cancel_prefix):
            ref = ref[len(cancel_prefix) :]
        wanted = abs(row.values["quantity"])
        code = row.values.get("product_code") or row.values.get("product_name")
        key = row_key(row)
        if key in applied:
            row.outcome, row.reason = "unchanged", f"cancels {wanted} of {code}: already applied"
            continue
        target = _match(row, ref, pending)
        if target is None:
            row.refuse(
                f"cancels {wanted} of {code}, which no earlier order of this file, nor any "
                "stored order, has left"
            )
            continue
        order, line, field = target
        pending[(line.id, field)] = pending.get((line.id, field), 0) + wanted
        what = "return" if field == "qty_returned" else "cancellation"
        row.order_ref = order.external_ref or order.number
        row.outcome = "updated"
        row.reason = f"{what} of {wanted} on stored order {row.order_ref} ({order.number})"
        applied.add(key)
        plan.append(StoredCancel(row, key, line, field, wanted))
    return plan


def write_stored(run_id: int, plan: Sequence[StoredCancel]) -> int:
    """Apply the planned rows in one transaction; returns the orders changed."""
    if not plan:
        return 0
    with unit_of_work() as sess:
        lines = {item.line.id: item.line for item in plan}
        orders = {line.order.id: line.order for line in lines.values()}
        line_before = {i: json.dumps(snapshot(ln, LINE_FIELDS)) for i, ln in lines.items()}
        order_before = {
            i: json.dumps({"header": snapshot(o, HEADER_FIELDS)}) for i, o in orders.items()
        }
        for item in plan:
            setattr(item.line, item.field, getattr(item.line, item.field) + item.quantity)
        for order in orders.values():
            if order.status == "confirmed" and all(
                ln.qty_cancelled >= ln.quantity for ln in order.lines
            ):
                order.status = "cancelled"
        with sess.no_autoflush:
            save_versioned(sess, list(lines.values()), LINE_FIELDS)
            save_versioned(sess, list(orders.values()), HEADER_FIELDS)
        record_rows(
            run_id,
            "order_line",
            [(i, "updated", ln.version, line_before[i]) for i, ln in lines.items()],
        )
        record_rows(
            run_id,
            "sales_order",
            [(i, "updated", o.version, order_before[i]) for i, o in orders.items()],
        )
        record_rows(
            run_id,
            APPLIED,
            [
                (item.line.id, "applied", None, json.dumps([item.key, item.field, item.quantity]))
                for item in plan
            ],
        )
    return len(orders)


__all__ = ["applied_by_line", "keep_applied", "plan_stored", "write_stored"]
