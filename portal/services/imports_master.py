"""Importing master data and stock from a team's file: customers, products, stock on hand.

Each row is matched by its code (customer id, SKU; for stock SKU and warehouse code): one not
found is created, one found with different values is updated, one the same is unchanged —
all through the catalog and inventory services (their validation, audit and, for a new
product, its stock levels), one row per transaction, so a refused row changes nothing and
leaves the others. Stock on hand is set by an adjustment movement on the ledger. A dry run
decides by comparison and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import Customer, ImportRun, Product, Warehouse
from portal.services import audit, catalog, inventory
from portal.services.actor import Actor
from portal.services.base import RecordService, ServiceError, unit_of_work
from portal.services.imports import ImportResult, file_hash, read_rows
from portal.services.imports_rows import Row
from portal.services.imports_write import finish_run, require_import
from sheets.readers import Table

Progress = Callable[[int, int | None], None]
MASTER = {
    "customers": (catalog.customers, Customer, "code"),
    "products": (catalog.products, Product, "sku"),
}
COLUMNS = {
    "customer_code": "code",
    "customer_name": "name",
    "product_code": "sku",
    "product_name": "name",
}


def import_master(
    kind: str,
    path: Path,
    table: Table,
    mapping: Mapping[str, str],
    actor: Actor,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import the customers, products or stock of ``table`` as ``actor``."""
    require_import(actor)
    rows = read_rows(table, mapping, kind)
    result = ImportResult(table.name, file_hash(path), dry_run, None, table.headers, rows)
    run = None
    if not dry_run:
        with unit_of_work() as sess:
            run = ImportRun(
                kind=kind,
                file_name=table.name[:255],
                file_hash=result.file_hash,
                actor=actor.name,
                status="running",
                counts="{}",
            )
            sess.add(run)
    apply = _stock_row if kind == "stock" else _master_row
    for done, row in enumerate(rows, start=1):
        if not row.outcome:
            try:
                apply(kind, row, actor, dry_run)
            except ServiceError as error:  # its unit of work rolled back: nothing changed
                row.refuse(error.message)
        if progress is not None:
            progress(done, len(rows))
    counts = {"rows": len(rows)}
    for outcome in ("created", "updated", "unchanged", "refused"):
        counts[f"rows_{outcome}"] = sum(row.outcome == outcome for row in rows)
    result.counts = counts
    if run is not None:
        with unit_of_work():
            run = db.session.get(ImportRun, run.id)
            finish_run(run, counts, "done")
            audit.record(
                actor,
                "import_run",
                run.id,
                "import",
                detail={"file": run.file_name, "sha256": run.file_hash, "kind": kind, **counts},
            )
        result.run_id = run.id
    return result


def _master_row(kind: str, row: Row, actor: Actor, dry_run: bool) -> None:
    service, model, key_column = MASTER[kind]
    values = {COLUMNS.get(name, name): value for name, value in row.values.items()}
    code = values.get(key_column)
    if not code:
        row.refuse(f"no {key_column}")
        return
    found = db.session.execute(
        select(model).where(getattr(model, key_column) == code)
    ).scalar_one_or_none()
    if found is None:
        if not dry_run:
            _create(service, values, actor)
        row.outcome = "created"
        return
    changes = {
        name: value
        for name, value in values.items()
        if name != key_column and value is not None and getattr(found, name) != value
    }
    if changes and not dry_run:
        service.update(found, changes, actor)
    row.outcome = "updated" if changes else "unchanged"


def _create(service: RecordService, values: dict[str, Any], actor: Actor) -> None:
    data = {name: value for name, value in values.items() if value is not None}
    if service is catalog.products and "list_price" not in data:
        data["list_price"] = 0
    service.create(data, actor)


def _stock_row(kind: str, row: Row, actor: Actor, dry_run: bool) -> None:
    sku, warehouse_code = row.values.get("product_code"), row.values.get("warehouse_code")
    on_hand = row.values.get("on_hand")
    product_id = db.session.scalar(select(Product.id).where(Product.sku == sku))
    warehouse_id = db.session.scalar(select(Warehouse.id).where(Warehouse.code == warehouse_code))
    if product_id is None or warehouse_id is None:
        missing = f"product {sku!r}" if product_id is None else f"warehouse {warehouse_code!r}"
        row.refuse(f"no {missing}")
        return
    if on_hand is None or on_hand < 0:
        row.refuse("on hand must be a whole number of 0 or more")
        return
    level = inventory.stock_level(product_id, warehouse_id)
    if level.on_hand == on_hand:
        row.outcome = "unchanged"
        return
    if not dry_run:
        inventory.adjust(level, on_hand, "import: stock count", actor)
    row.outcome = "updated"
