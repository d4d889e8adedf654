"""Carrying out an import plan, set-based: a few statements per chunk of orders, not per row.

New customers, products, orders and lines are inserted with one executemany INSERT per table
and chunk (ids read back in parameter order); changed orders and lines are written with
``base.save_versioned`` (the same optimistic lock as any edit); every record touched is noted
in ``import_record`` with its version, so :func:`undo` can tell later whether it moved on.
Historical orders take no stock: no allocation or ledger movement is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select

from portal.extensions import db
from portal.models import (
    Customer,
    ImportRecord,
    ImportRun,
    InventoryMovement,
    OrderLine,
    Product,
    SalesOrder,
    StockLevel,
    Warehouse,
    utcnow,
)
from portal.services import audit, numbering, order_totals, service_level_marks
from portal.services.actor import Actor
from portal.services.base import ConflictError, PermissionDenied, save_versioned, unit_of_work
from portal.services.imports_plan import (
    HEADER_FIELDS,
    LINE_FIELDS,
    NewRecord,
    imported_versions,
    lines_moved_on,
)


@dataclass
class NewOrder:
    """An order to insert: its columns and its lines' columns."""

    values: dict[str, Any]
    lines: list[dict[str, Any]]


@dataclass
class OrderUpdate:
    """A stored order to change: header fields, lines by id, and lines to add."""

    order: SalesOrder
    header: dict[str, Any]
    lines: dict[int, dict[str, Any]]
    new_lines: list[dict[str, Any]]


def require_import(actor: Actor) -> None:
    """Imports write orders: the actor needs ``can_write`` on sales orders."""
    if not actor.can("can_write", "SalesOrder"):
        raise PermissionDenied(f"{actor.name} may not import orders")


def record_rows(run_id: int, entity: str, rows: Sequence[tuple[int, str, int, str | None]]) -> None:
    if rows:
        db.session.execute(
            insert(ImportRecord.__table__),
            [
                {
                    "run_id": run_id,
                    "entity": entity,
                    "entity_id": entity_id,
                    "action": action,
                    "version": version,
                    "before": before,
                }
                for entity_id, action, version, before in rows
            ],
        )


def _insert_returning_ids(model: type, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` of ``model``; their ids, in order.

    On PostgreSQL the ids come from the table's sequence first (one statement, as
    ``base.assign_ids`` does), so the rows go in as one pipelined executemany of a short
    statement; elsewhere an ``INSERT … RETURNING`` in parameter order.
    """
    table = model.__table__
    sess = db.session
    if sess.get_bind().dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        ids = sorted(
            sess.execute(
                select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))
            ).scalars()
        )
        sess.execute(
            insert(table), [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
        )
        return ids
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(sess.execute(statement, rows).scalars())


def insert_master(run_id: int, model: type, new: Sequence[NewRecord]) -> None:
    """Insert new customers or products (one statement) and note them for the run."""
    if not new:
        return
    defaults: dict[str, Any] = {"version": 1}
    if model is Customer:
        defaults |= {"credit_limit": 0, "credit_hold": False, "active": True, "currency": "USD"}
        defaults |= {"created_at": utcnow()}
    else:
        defaults |= {"unit": "ea", "pack_size": 1, "lead_time_days": 0, "active": True}
    ids = _insert_returning_ids(model, [defaults | record.values for record in new])
    for record, new_id in zip(new, ids, strict=True):
        record.id = new_id
    entity = model.__tablename__
    record_rows(run_id, entity, [(new_id, "created", 1, None) for new_id in ids])
    if model is Product:  # as catalog.products.create: a zero stock level in every warehouse
        warehouses = list(db.session.scalars(select(Warehouse.id)))
        levels = [
            {"product_id": product_id, "warehouse_id": warehouse_id, "version": 1}
            | {"on_hand": 0, "allocated": 0, "reorder_point": 0}
            for product_id in ids
            for warehouse_id in warehouses
        ]
        if levels:
            db.session.execute(insert(StockLevel.__table__), levels)


def insert_orders(run_id: int, source: str, orders: Sequence[NewOrder]) -> list[str]:
    """Insert orders with their lines; returns their numbers."""
    if not orders:
        return []
    numbers = numbering.next_numbers("sales_order", len(orders))
    now = utcnow()
    rows = [
        {
            **order.values,
            "number": number,
            "source": source,
            "currency": order.values.get("currency") or "USD",
            "revision": 0,
            "version": 1,
            "total": order_totals.rows_total(order.lines),
            "created_at": now,
            "updated_at": now,
        }
        for order, number in zip(orders, numbers, strict=True)
    ]
    ids = _insert_returning_ids(SalesOrder, rows)
    line_rows = [
        {**line, "order_id": order_id, "line_no": line_no, "version": 1}
        for order, order_id in zip(orders, ids, strict=True)
        for line_no, line in enumerate(order.lines, start=1)
    ]
    if line_rows:
        db.session.execute(insert(OrderLine.__table__), [_line_row(row) for row in line_rows])
    # new orders have no shipments, invoices …: their own dates are all their facts' days
    service_level_marks.mark_days(
        db.session.connection(),
        (row.get(name) for row in rows for name in service_level_marks.ORDER_DATES),
    )
    record_rows(run_id, "sales_order", [(order_id, "created", 1, None) for order_id in ids])
    return numbers


def _line_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"qty_allocated": 0, "qty_backordered": 0, **row}


def snapshot(record: Any, names: Sequence[str]) -> dict[str, Any]:
    return {name: audit.plain(getattr(record, name)) for name in names}


def update_orders(run_id: int, updates: Sequence[OrderUpdate]) -> None:
    """Write the changed fields of stored orders and lines; add the lines they lack."""
    if not updates:
        return
    sess = db.session
    notes: list[tuple[SalesOrder, str]] = []
    changed_lines: list[OrderLine] = []
    line_notes: list[tuple[OrderLine, str]] = []
    for update in updates:
        order = update.order
        before = {"header": snapshot(order, HEADER_FIELDS)}
        for name, value in update.header.items():
            setattr(order, name, value)
        by_id = {line.id: line for line in order.lines}
        for line_id, changes in update.lines.items():
            line = by_id[line_id]
            line_notes.append((line, json.dumps(snapshot(line, LINE_FIELDS))))
            for name, value in changes.items():
                setattr(line, name, value)
            changed_lines.append(line)
        notes.append((order, json.dumps(before)))
    with sess.no_autoflush:
        save_versioned(sess, [update.order for update in updates], HEADER_FIELDS)
        save_versioned(sess, changed_lines, LINE_FIELDS)
    _add_lines(run_id, updates)
    record_rows(run_id, "sales_order", [(o.id, "updated", o.version, b) for o, b in notes])
    record_rows(run_id, "order_line", [(ln.id, "updated", ln.version, b) for ln, b in line_notes])


def _add_lines(run_id: int, updates: Sequence[OrderUpdate]) -> None:
    rows = []
    for update in updates:
        next_no = max((line.line_no for line in update.order.lines), default=0)
        for line in update.new_lines:
            next_no += 1
            rows.append(_line_row({**line, "order_id": update.order.id, "line_no": next_no}))
    if rows:
        service_level_marks.mark_orders(db.session, {row["order_id"] for row in rows})
        ids = _insert_returning_ids(OrderLine, [{**row, "version": 1} for row in rows])
        record_rows(run_id, "order_line", [(line_id, "created", 1, None) for line_id in ids])
        order_totals.refresh(db.session, {row["order_id"] for row in rows})


def finish_run(run: ImportRun, counts: Mapping[str, int], status: str) -> None:
    run.counts = json.dumps(dict(counts), sort_keys=True)
    run.status = status
    run.finished_at = utcnow()


def undo(run_id: int, actor: Actor) -> dict[str, int]:
    """Remove what import ``run_id`` created and restore what it updated, as one change.

    Refused (409, nothing changed) when any of its orders moved on since: changed in the
    portal or by a later import (its version is no longer the one the run left).
    """
    require_import(actor)
    with unit_of_work() as sess:
        run = sess.get(ImportRun, run_id)
        if run is None or run.status not in ("done",):
            state = "does not exist" if run is None else f"is {run.status}"
            raise ConflictError(f"import {run_id} {state}; only a finished import can be undone")
        records = list(sess.scalars(select(ImportRecord).where(ImportRecord.run_id == run_id)))
        moved = _moved_on(
            run_id, sorted({r.entity_id for r in records if r.entity == "sales_order"})
        )
        if moved:
            numbers = sess.scalars(select(SalesOrder.number).where(SalesOrder.id.in_(moved[:5])))
            raise ConflictError(
                f"import {run_id} cannot be undone: {len(moved)} of its orders moved on since "
                f"({', '.join(numbers)})"
            )
        counts = _undo_records(records)
        run.status = "undone"
        audit.record(actor, "import_run", run.id, "undo", detail={"file": run.file_name, **counts})
    return counts


def _moved_on(run_id: int, order_ids: Sequence[int]) -> list[int]:
    """The run's orders that moved on since: changed in the portal (a version of the order or
    of a line that no import left), or touched by a later import that still stands."""
    current = dict(
        db.session.execute(
            select(SalesOrder.id, SalesOrder.version).where(SalesOrder.id.in_(order_ids))
        ).all()
    )
    left = imported_versions(order_ids)
    moved = {order_id for order_id in order_ids if current.get(order_id) != left.get(order_id)}
    moved |= lines_moved_on(order_ids)
    later = select(ImportRecord.entity_id).join(ImportRun, ImportRun.id == ImportRecord.run_id)
    later = later.where(
        ImportRecord.entity == "sales_order",
        ImportRecord.entity_id.in_(order_ids),
        ImportRecord.run_id > run_id,
        ImportRun.status == "done",
    )
    moved.update(db.session.scalars(later))
    return sorted(moved)


def _undo_records(records: Sequence[ImportRecord]) -> dict[str, int]:
    sess = db.session
    created = {
        entity: [r.entity_id for r in records if r.entity == entity and r.action == "created"]
        for entity in ("sales_order", "order_line", "customer", "product")
    }
    line_orders = select(OrderLine.order_id).where(OrderLine.id.in_(created["order_line"]))
    emptied_orders = set(sess.scalars(line_orders))
    service_level_marks.mark_orders(sess, [*created["sales_order"], *emptied_orders])
    sess.execute(delete(OrderLine).where(OrderLine.id.in_(created["order_line"])))
    sess.execute(delete(OrderLine).where(OrderLine.order_id.in_(created["sales_order"])))
    sess.execute(delete(SalesOrder).where(SalesOrder.id.in_(created["sales_order"])))
    restored = _restore_updates([r for r in records if r.action == "updated"])
    order_totals.refresh(sess, emptied_orders - set(created["sales_order"]))
    customers = _unused(Customer, created["customer"], SalesOrder.customer_id)
    products = _unused(Product, created["product"], OrderLine.product_id)
    products = _unused(Product, products, InventoryMovement.product_id)
    sess.execute(delete(Customer).where(Customer.id.in_(customers)))
    sess.execute(delete(StockLevel).where(StockLevel.product_id.in_(products)))
    sess.execute(delete(Product).where(Product.id.in_(products)))
    return {
        "orders_removed": len(created["sales_order"]),
        "orders_restored": restored,
        "customers_removed": len(customers),
        "products_removed": len(products),
    }


def _unused(model: type, ids: Sequence[int], referrer: Any) -> list[int]:
    if not ids:
        return []
    used = set(db.session.scalars(select(func.distinct(referrer)).where(referrer.in_(ids))))
    return [record_id for record_id in ids if record_id not in used]


def _restore_updates(records: Sequence[ImportRecord]) -> int:
    sess = db.session
    before = {(r.entity, r.entity_id): json.loads(r.before or "{}") for r in records}
    orders = {key[1]: value for key, value in before.items() if key[0] == "sales_order"}
    lines = {key[1]: value for key, value in before.items() if key[0] == "order_line"}
    loaded_orders = list(sess.scalars(select(SalesOrder).where(SalesOrder.id.in_(list(orders)))))
    loaded_lines = list(sess.scalars(select(OrderLine).where(OrderLine.id.in_(list(lines)))))
    for order in loaded_orders:
        _assign(order, orders[order.id].get("header", {}), SalesOrder)
    for line in loaded_lines:
        _assign(line, lines[line.id], OrderLine)
    with sess.no_autoflush:
        save_versioned(sess, loaded_orders, HEADER_FIELDS)
        save_versioned(sess, loaded_lines, LINE_FIELDS)
    # the versions the undo leaves are an import's too: what came before moves on from here
    run_id = records[0].run_id if records else 0
    record_rows(run_id, "sales_order", [(o.id, "restored", o.version, None) for o in loaded_orders])
    record_rows(
        run_id, "order_line", [(ln.id, "restored", ln.version, None) for ln in loaded_lines]
    )
    return len(loaded_orders)


def _assign(record: Any, values: Mapping[str, Any], model: type) -> None:
    from portal.services.imports_rows import PARSERS

    for name, value in values.items():
        column = model.__table__.c[name]
        python_type = column.type.python_type
        if value is None:
            setattr(record, name, None)
        elif python_type.__name__ == "date":
            setattr(record, name, PARSERS["date"](value))
        elif python_type.__name__ == "Decimal":
            setattr(record, name, PARSERS["decimal"](value))
        else:
            setattr(record, name, python_type(value))
