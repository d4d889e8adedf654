"""Importing a team's order history from their files (issue 13): the service.

``import_orders`` reads a table (``sheets.readers``), types each row by the mapping, groups
the rows into orders (``imports_rows``), matches customers and products and decides each
order's fate against what is stored (``imports_plan``), then writes chunk by chunk, one
transaction each (``imports_write``). Every row ends with an outcome — created, updated,
unchanged or refused — and a reason. A dry run decides the same and writes nothing.

Imported orders are history: they keep the team's order id (``external_ref``), dates,
status and prices as given, take no stock, and carry the source ``import:<file>``. The rule
for an imported open order (no ship date, no status) is that it stays ``confirmed`` without
allocation, for a Specialist to allocate as any confirmed order (docs/import.md). Each run is
recorded (``ImportRun``: file name, SHA-256, user, counts) and audited; the same file again
changes nothing, a corrected one changes only what differs, and :func:`undo` takes a run back
while none of its orders moved on.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from portal.extensions import db
from portal.models import Customer, ImportRun, Product, utcnow
from portal.services import audit
from portal.services.actor import Actor
from portal.services.base import unit_of_work
from portal.services.imports_fields import (
    ORDER_FIELDS,
    check_mapping,
    fields_of,
)
from portal.services.imports_plan import (
    Catalog,
    NewRecord,
    customer_of,
    differences,
    existing_orders,
    imported_versions,
    lines_moved_on,
    product_of,
    resolve_customers,
    resolve_products,
    wanted_header,
    wanted_line,
)
from portal.services.imports_rows import (
    Grouper,
    OrderIn,
    Row,
    attach_cancellations,
    check_row,
    line_prices,
    mark_returned,
    number_line_keys,
    parse_row,
)
from portal.services.imports_stored import keep_applied, plan_stored, write_stored
from portal.services.imports_write import (
    NewOrder,
    OrderUpdate,
    finish_run,
    insert_master,
    insert_orders,
    require_import,
    undo,
    update_orders,
)
from sheets.readers import Table

Progress = Callable[[int, int | None], None]
ORDER_LEVEL = tuple(spec.name for spec in ORDER_FIELDS if spec.order_level)
__all__ = ["ImportOptions", "ImportResult", "import_orders", "import_table", "undo"]


@dataclass
class ImportOptions:
    """How to import: the mapping (header → field), a dry run, what may be created."""

    mapping: dict[str, str]
    dry_run: bool = False
    new_customers: bool = True
    new_products: bool = True
    cancel_prefix: str | None = None
    default_status: str | None = None
    returned_orders: frozenset[str] = frozenset()  # order ids a returns list names
    chunk_size: int = 1000
    today: date | None = None
    lines: bool = True  # False: one row per order, orders without lines (a tracker of orders)
    own_line_refs: bool = False  # a line's external_ref is its line id alone (a tracker's key)
    source: str | None = None  # the orders' source; default import:<file>
    open_status: str = "confirmed"  # an open order's status (a tracker's: draft, editable)


@dataclass
class ImportResult:
    """What an import did (or would do): counts and every row's outcome."""

    file_name: str
    file_hash: str
    dry_run: bool
    run_id: int | None
    headers: list[str]
    rows: list[Row]
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "sha256": self.file_hash,
            "dry_run": self.dry_run,
            "import_id": self.run_id,
            "counts": self.counts,
            "rows": [
                {
                    "row": row.number,
                    "order": row.order_ref,
                    "outcome": row.outcome,
                    "reason": row.reason,
                }
                for row in self.rows
            ],
        }


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def typed_rows(
    table: Table, mapping: Mapping[str, str], kind: str, progress: Progress | None = None
) -> Iterator[Row]:
    """Every row of ``table`` typed by ``mapping`` (checked first: MappingProblem)."""
    check_mapping(kind, mapping, table.headers)
    specs = fields_of(kind)
    columns = {table.headers.index(header): specs[name] for header, name in mapping.items()}
    for count, (number, cells) in enumerate(table.rows, start=1):
        yield parse_row(number, cells, columns, table.headers)
        if progress is not None and count % 1000 == 0:
            progress(count, None)


def read_rows(
    table: Table, mapping: Mapping[str, str], kind: str, progress: Progress | None = None
) -> list[Row]:
    """:func:`typed_rows` as a list."""
    return list(typed_rows(table, mapping, kind, progress))


def _group(
    table: Table, options: ImportOptions, today: date, progress: Progress | None
) -> tuple[list[Row], Grouper]:
    """Read, check and group the rows as they stream in."""
    mapped = set(options.mapping.values())
    default_status = options.default_status if "status" not in mapped else None
    if default_status:
        mapped.add("status")
    order_fields = [name for name in ORDER_LEVEL if name in mapped]
    grouper = Grouper(order_fields, options.cancel_prefix, options.lines)
    kind = "orders" if options.lines else "order_headers"
    rows = []
    for row in typed_rows(table, options.mapping, kind, progress):
        if default_status:
            row.values["status"] = default_status
        check_row(row, today, options.lines)
        grouper.feed(row)
        rows.append(row)
    for order in grouper.orders.values():
        number_line_keys(order)
    grouper.unmatched = attach_cancellations(
        grouper.orders, grouper.cancellations, options.cancel_prefix, today
    )
    mark_returned(grouper.orders, options.returned_orders, today)
    return rows, grouper


def import_orders(
    path: Path,
    table: Table,
    actor: Actor,
    options: ImportOptions,
    progress: Progress | None = None,
) -> ImportResult:
    """Import the orders of ``table`` (read from ``path``) as ``actor``; see the module."""
    return import_table(table, file_hash(path), actor, options, progress)


def import_table(
    table: Table,
    digest: str,
    actor: Actor,
    options: ImportOptions,
    progress: Progress | None = None,
) -> ImportResult:
    """:func:`import_orders` of rows that come from no file on disk (a tracker's sheet):
    ``digest`` stands for the file's SHA-256 in the run's record."""
    require_import(actor)
    today = options.today or utcnow().date()  # UTC, as every service's "today"
    with _collector_paused():
        rows, grouper = _group(table, options, today, progress)
    result = ImportResult(table.name, digest, options.dry_run, None, table.headers, rows)
    catalog = _resolve(grouper, actor, options)
    run = None if options.dry_run else _start_run(result, actor)
    if run is not None:
        with unit_of_work():
            insert_master(run.id, Customer, catalog.new_customers())
            insert_master(run.id, Product, catalog.new_products())
    counts = _write(grouper.orders, rows, catalog, today, run, actor, options, progress)
    stored = plan_stored(grouper.unmatched, options.cancel_prefix)
    if run is not None:
        counts["orders_updated"] += write_stored(run.id, stored)
    else:
        counts["orders_updated"] += len({item.line.order_id for item in stored})
    counts |= {
        "rows": len(rows),
        "rows_refused": sum(row.outcome == "refused" for row in rows),
        "customers_created": len(catalog.new_customers()),
        "products_created": len(catalog.new_products()),
    }
    result.counts = counts
    if run is not None:
        result.run_id = run.id
        with unit_of_work():
            run = db.session.get(ImportRun, run.id)
            finish_run(run, counts, "done")
            audit.record(
                actor,
                "import_run",
                run.id,
                "import",
                detail={"file": run.file_name, "sha256": run.file_hash, "kind": "orders", **counts},
            )
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading builds many small objects and no cycles: the garbage collector's passes over
    the growing heap would cost more than the reading itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _start_run(result: ImportResult, actor: Actor) -> ImportRun:
    with unit_of_work() as sess:
        run = ImportRun(
            kind="orders",
            file_name=result.file_name[:255],
            file_hash=result.file_hash,
            actor=actor.name,
            status="running",
            counts="{}",
        )
        sess.add(run)
        sess.flush()
    return run


def _resolve(grouper: Grouper, actor: Actor, options: ImportOptions) -> Catalog:
    catalog = Catalog()
    may_customers = options.new_customers and actor.can("can_write", "Customer")
    may_products = options.new_products and actor.can("can_write", "Product")
    live = [order for order in grouper.orders.values() if not order.refused]
    refused_customers = resolve_customers(live, catalog, may_customers)
    for order in live:
        key = _customer_key(order)
        if key in refused_customers:
            order.refused = refused_customers[key]
    lines = [line for order in live for line in order.lines]
    refused_products = resolve_products(lines, catalog, may_products, grouper.products)
    for order in live:
        kept = []
        for line in order.lines:
            key = ("code", line.product_code) if line.product_code else ("name", line.product_name)
            if key in refused_products:
                line.row.refuse(refused_products[key])
            else:
                kept.append(line)
        order.lines = kept
    return catalog


def _customer_key(order: OrderIn) -> tuple[str, str]:
    code, name = order.header.get("customer_code"), order.header.get("customer_name")
    return ("code", code) if code else ("name", name or "")


@dataclass
class Plan:
    """Each order's decision: new, an update, unchanged, or refused (rows marked)."""

    new: list[tuple[OrderIn, NewOrder]] = field(default_factory=list)
    updates: list[tuple[OrderIn, OrderUpdate]] = field(default_factory=list)
    unchanged: list[OrderIn] = field(default_factory=list)
    refused: list[OrderIn] = field(default_factory=list)

    def lists(self) -> tuple[list, ...]:
        return self.new, self.updates, self.unchanged, self.refused


def _plan(
    orders: Mapping[str, OrderIn], catalog: Catalog, today: date, options: ImportOptions
) -> Plan:
    plan = Plan()
    stored = existing_orders([ref for ref, order in orders.items() if not order.refused])
    versions = imported_versions([order.id for order in stored.values()])
    lines_changed = lines_moved_on(list(versions))
    for ref, order in orders.items():
        wanted = None if order.refused else _wanted(order, catalog, today, options)
        if wanted is None:
            plan.refused.append(order)
            continue
        header, lines = wanted
        found = stored.get(ref)
        if found is None:
            entry = NewOrder({"external_ref": ref, **header}, list(lines.values()))
            plan.new.append((order, entry))
            continue
        keep_applied(found, header, lines)
        changes, line_changes, missing = differences(found, header, lines)
        if not changes and not line_changes and not missing:
            plan.unchanged.append(order)
        elif versions.get(found.id) != found.version or found.id in lines_changed:
            why = "was not imported" if found.id not in versions else "changed since its import"
            order.refused = f"order {ref} ({found.number}) {why}; left as it is"
            plan.refused.append(order)
        else:
            new_lines = [lines[line_ref] for line_ref in missing]
            update = OrderUpdate(found, changes, line_changes, new_lines)
            plan.updates.append((order, update))
    return plan


def _wanted(
    order: OrderIn, catalog: Catalog, today: date, options: ImportOptions
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
    """The order's wanted columns and lines (by external ref), or None when refused."""
    if order.ref and len(order.ref) > 60:
        order.refused = f"the order id {order.ref[:20]!r}… is longer than 60 characters"
        return None
    customer = customer_of(order, catalog)
    header = wanted_header(order, today, options.open_status)
    header["customer_id"] = customer.id if isinstance(customer, NewRecord) else customer
    lines: dict[str, dict[str, Any]] = {}
    for line in order.lines:
        product = product_of(line, catalog)
        product_id = product.id if isinstance(product, NewRecord) else product
        prices = line_prices(line)
        if prices[0] is None:
            price = catalog.product_prices.get(product_id) if product_id else None
            if price is None:
                line.row.refuse("no unit price or line amount")
                continue
            prices = (price, price)
        values = wanted_line(line, header["status"], prices)
        ref = line.key if options.own_line_refs else f"{order.ref}/{line.key}"
        if len(ref) > 60:
            line.row.refuse(f"the line id {ref[:20]!r}… is longer than 60 characters")
            continue
        lines[ref] = {"external_ref": ref, "product_id": product_id, **values}
    if not lines and options.lines:
        order.refused = order.refused or "none of its lines could be imported"
        return None
    return header, lines


def _write(
    orders: Mapping[str, OrderIn],
    rows: list[Row],
    catalog: Catalog,
    today: date,
    run: ImportRun | None,
    actor: Actor,
    options: ImportOptions,
    progress: Progress | None,
) -> dict[str, int]:
    """Decide and write the orders chunk by chunk, one transaction each (nothing in a dry
    run); mark every row's outcome. Each chunk's stored orders are read with it, and the
    file's orders are let go once written, so memory does not grow with the chunks."""
    counts = dict.fromkeys(COUNTED, 0)
    refs = list(orders)
    total = len(rows)
    done = total - sum(len(order.rows) for order in orders.values())  # refused on reading
    step = max(1, options.chunk_size)
    source = (options.source or f"import:{run.file_name if run else ''}")[:120]
    for start in range(0, len(refs), step):
        chunk = {ref: orders[ref] for ref in refs[start : start + step]}
        plan = _plan(chunk, catalog, today, options)
        if run is not None and (plan.new or plan.updates):
            with unit_of_work():
                numbers = insert_orders(run.id, source, [entry for _, entry in plan.new])
                update_orders(run.id, [entry for _, entry in plan.updates])
                audit.record(
                    actor,
                    "import_run",
                    run.id,
                    "import_chunk",
                    detail={
                        "created": numbers,
                        "updated": [update.order.number for _, update in plan.updates],
                    },
                )
        _mark(plan)
        for name, entries in zip(COUNTED, plan.lists(), strict=True):
            counts[name] += len(entries)
        for order in chunk.values():
            done += len(order.rows)
            order.lines, order.header = [], {}
        if progress is not None:
            progress(done, total)
    return counts


COUNTED = ("orders_created", "orders_updated", "orders_unchanged", "orders_refused")


def _mark(plan: Plan) -> None:
    for outcome, orders in (
        ("created", [order for order, _ in plan.new]),
        ("updated", [order for order, _ in plan.updates]),
        ("unchanged", plan.unchanged),
    ):
        for order in orders:
            _mark_rows(order.rows, outcome, "")
    for order in plan.refused:
        for row in order.rows:
            row.refuse(order.refused)
            if row.outcome == "pending":
                row.outcome = "refused"
                row.reason = f"{row.reason}, but {order.refused}"


def _mark_rows(rows: Iterable[Row], outcome: str, reason: str) -> None:
    for row in rows:
        if row.outcome == "pending":
            row.outcome = outcome
        elif not row.outcome:
            row.outcome, row.reason = outcome, reason
