"""Allocation, backorders, shipments and deliveries.

Allocation takes available-to-promise stock warehouse by warehouse in priority order, with the
stock rows locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers and the
stock level's version column refuses a stale write), so two allocations can never take the
same unit. What cannot be allocated becomes a backorder, filled when stock arrives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import inspect, select

from portal.extensions import db
from portal.models import (
    DELAY_REASONS,
    Allocation,
    Backorder,
    BackorderStatus,
    MovementKind,
    OrderLine,
    OrderStatus,
    SalesOrder,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    StockLevel,
    Warehouse,
    utcnow,
)
from portal.services import audit, inventory, notifications, numbering, orders, states
from portal.services.base import (
    Actor,
    ConflictError,
    ValidationFailed,
    require,
    save_versioned,
    unit_of_work,
    upsert,
)
from portal.services.limits import date_errors

# shipment edits and deliveries moved to portal.services.shipments; these names stay here
# for the callers of fulfillment
from portal.services.shipments import (  # noqa: F401
    SHIPMENT_VIEW,
    arrives_late,
    deliver,
    update_shipment,
)

ALLOCATABLE = states.ORDERS.sources("allocate")
SHIPPABLE = states.ORDERS.sources("ship")


def open_quantity(line: OrderLine) -> int:
    """Units still to be shipped: ordered − cancelled − shipped."""
    return line.quantity - line.qty_cancelled - line.qty_shipped


def unallocated(line: OrderLine) -> int:
    """Units still needing stock: open − allocated."""
    return open_quantity(line) - line.qty_allocated


def _warehouses() -> list[Warehouse]:
    return list(
        db.session.execute(
            select(Warehouse)
            .where(Warehouse.active.is_(True))
            .order_by(Warehouse.priority, Warehouse.id)
        ).scalars()
    )


class AllocationState:
    """What one allocation reads and writes, in as few statements as the work allows.

    The stock rows are loaded with one query and locked in one global order (product, then
    warehouse) so concurrent allocations never wait on each other in a cycle; open backorders
    are read only for lines that have some (``qty_backordered`` > 0 exactly when a line has
    an open backorder). Planned takes are collected and written by :meth:`write`: the stock
    levels and ledger, the allocation rows and the order lines with one statement each.
    """

    def __init__(self, lines: list[OrderLine], warehouses: list[Warehouse]):
        self.warehouses = warehouses
        product_ids = sorted({line.product_id for line in lines})
        levels = db.session.execute(
            select(StockLevel)
            .where(
                StockLevel.product_id.in_(product_ids),
                StockLevel.warehouse_id.in_([w.id for w in warehouses]),
            )
            .order_by(StockLevel.product_id, StockLevel.warehouse_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
        self.levels = {(level.product_id, level.warehouse_id): level for level in levels}
        self.available = {key: level.available for key, level in self.levels.items()}
        backordered = [line.id for line in lines if line.qty_backordered]
        self.backorders: dict[int, Backorder] = {}
        if backordered:
            rows = db.session.execute(
                select(Backorder).where(
                    Backorder.order_line_id.in_(backordered),
                    Backorder.status == BackorderStatus.OPEN.value,
                )
            ).scalars()
            self.backorders = {backorder.order_line_id: backorder for backorder in rows}
        self.lines = lines
        self.moves: list[inventory.Move] = []
        self.takes: dict[tuple[int, int], int] = {}

    def take(self, line: OrderLine, warehouse_id: int, units: int) -> None:
        """Plan ``units`` of ``line`` from ``warehouse_id``."""
        key = (line.product_id, warehouse_id)
        self.available[key] -= units
        self.moves.append(
            inventory.Move(
                self.levels[key],
                allocated_delta=units,
                reference=f"{line.order.number}/{line.line_no}",
            )
        )
        self.takes[(line.id, warehouse_id)] = self.takes.get((line.id, warehouse_id), 0) + units
        line.qty_allocated += units

    def write(self, actor: Actor) -> None:
        """Write the planned takes: order lines, stock and ledger, allocation rows."""
        save_versioned(db.session, self.lines, ("qty_allocated", "qty_backordered"))
        inventory.move_many(self.moves, MovementKind.ALLOCATION, actor)
        _add_allocations(self.takes)


def _add_allocations(takes: Mapping[tuple[int, int], int]) -> None:
    """Add units to allocation rows (line, warehouse), creating missing rows: one upsert."""
    if not takes:
        return
    sess = db.session
    table = Allocation.__table__
    insert_rows = upsert(table)
    now = utcnow()
    sess.execute(
        insert_rows.on_conflict_do_update(
            index_elements=[table.c.order_line_id, table.c.warehouse_id],
            set_={"quantity": table.c.quantity + insert_rows.excluded.quantity},
        ),
        [
            {
                "order_line_id": line_id,
                "warehouse_id": warehouse_id,
                "quantity": units,
                "created_at": now,
            }
            for (line_id, warehouse_id), units in takes.items()
        ],
    )
    for loaded in list(sess.identity_map.values()):  # rows this session holds reload
        if type(loaded) is Allocation:
            state = inspect(loaded).dict
            if (state.get("order_line_id"), state.get("warehouse_id")) in takes or not state:
                sess.expire(loaded, ["quantity"])


def _allocation_rows(line_ids: list[int], warehouse_id: int) -> dict[int, Allocation]:
    """The allocation rows of these order lines in one warehouse, by line id (one query)."""
    rows = db.session.execute(
        select(Allocation).where(
            Allocation.order_line_id.in_(line_ids), Allocation.warehouse_id == warehouse_id
        )
    ).scalars()
    return {row.order_line_id: row for row in rows}


def _stock_levels(product_ids: list[int], warehouse_id: int) -> dict[int, StockLevel]:
    """The stock levels of these products in one warehouse, locked and read afresh (one
    query, in product order like every allocation's lock)."""
    levels = db.session.execute(
        select(StockLevel)
        .where(StockLevel.product_id.in_(product_ids), StockLevel.warehouse_id == warehouse_id)
        .order_by(StockLevel.product_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    return {level.product_id: level for level in levels}


def _open_backorder(line: OrderLine) -> Backorder | None:
    return db.session.execute(
        select(Backorder).where(
            Backorder.order_line_id == line.id, Backorder.status == BackorderStatus.OPEN.value
        )
    ).scalar_one_or_none()


def _allocate_line(line: OrderLine, state: AllocationState) -> int:
    """Plan what stock allows for one line, in warehouse priority order; returns the units."""
    need = unallocated(line)
    taken = 0
    for warehouse in state.warehouses:
        if need <= 0:
            break
        take = min(need, state.available.get((line.product_id, warehouse.id), 0))
        if take <= 0:
            continue
        state.take(line, warehouse.id, take)
        need -= take
        taken += take
    return taken


def _sync_backorder(
    line: OrderLine, today: date, state: AllocationState | None = None
) -> Backorder | None:
    """Make the line's open backorder match what is still unallocated; returns a new one."""
    need = unallocated(line)
    backorder = state.backorders.get(line.id) if state is not None else _open_backorder(line)
    created = None
    if need > 0 and backorder is None:
        created = Backorder(
            order_line_id=line.id,
            order_line=line,  # read by the notification before the row is flushed
            quantity=need,
            initial_quantity=need,  # kept as partial fills lower ``quantity``
            expected_date=today + timedelta(days=line.product.lead_time_days),
            status=BackorderStatus.OPEN.value,
        )
        db.session.add(created)
        if state is not None:
            state.backorders[line.id] = created
    elif need > 0:
        backorder.quantity = need
    elif backorder is not None:
        backorder.status = BackorderStatus.FILLED.value
        backorder.filled_at = utcnow()
        if state is not None:
            del state.backorders[line.id]
    line.qty_backordered = max(need, 0)
    return created


def _settle_status(order: SalesOrder, actor: Actor) -> None:
    """Move the order to the status its lines now describe."""
    lines = [line for line in order.lines if open_quantity(line) > 0 or line.qty_shipped > 0]
    if not lines:
        return
    shipped = sum(line.qty_shipped for line in lines)
    open_units = sum(open_quantity(line) for line in lines)
    allocated = sum(line.qty_allocated for line in lines)
    if shipped and open_units == 0:
        target = OrderStatus.SHIPPED.value
    elif shipped:
        target = OrderStatus.PARTIALLY_SHIPPED.value
    elif allocated and allocated == open_units:
        target = OrderStatus.ALLOCATED.value
    elif allocated:
        target = OrderStatus.PARTIALLY_ALLOCATED.value
    else:
        target = OrderStatus.CONFIRMED.value
    if target != order.status:
        states.transition(order, target, actor)


def allocate(order: SalesOrder, actor: Actor, today: date | None = None) -> SalesOrder:
    """Allocate every open line from stock; the rest becomes backorders."""
    return allocate_many([order], actor, today)[0]


def allocate_many(
    orders_to_allocate: Sequence[SalesOrder], actor: Actor, today: date | None = None
) -> list[SalesOrder]:
    """Allocate several orders in one transaction, in the order given.

    The stock rows of all their products are locked with one query, each order takes what
    the ones before it left, and the lines, stock, ledger, allocation rows and order statuses
    are written with one statement each, whatever the number of orders.
    """
    orders.orders._require(actor, "can_write")
    for order in orders_to_allocate:
        if order.status not in ALLOCATABLE:
            raise ConflictError(f"order {order.number} is {order.status}; it can't be allocated")
    today = today or utcnow().date()
    with unit_of_work():
        open_lines = {
            order.id: [line for line in order.lines if unallocated(line) > 0]
            for order in orders_to_allocate
        }
        state = AllocationState(
            [line for lines in open_lines.values() for line in lines], _warehouses()
        )
        outcomes = []
        for order in orders_to_allocate:
            new_backorders = []
            allocated = 0
            for line in open_lines[order.id]:
                allocated += _allocate_line(line, state)
                backorder = _sync_backorder(line, today, state)
                if backorder is not None:
                    new_backorders.append(backorder)
            outcomes.append((order, allocated, new_backorders))
        state.write(actor)
        for order, allocated, new_backorders in outcomes:
            audit.record(
                actor,
                "sales_order",
                order.id,
                "allocate",
                detail={
                    "allocated": allocated,
                    "backordered": sum(b.quantity for b in new_backorders),
                },
            )
            _settle_status(order, actor)
            if new_backorders:
                notifications.notify(order, "backordered", actor, backorders=new_backorders)
        orders.save_statuses(orders_to_allocate)
    return list(orders_to_allocate)


def fill_backorders(product_id: int, actor: Actor) -> list[str]:
    """Allocate newly arrived stock to open backorders, highest priority then oldest first."""
    filled: list[str] = []
    backorders = (
        db.session.execute(
            select(Backorder)
            .join(OrderLine, Backorder.order_line_id == OrderLine.id)
            .where(
                Backorder.status == BackorderStatus.OPEN.value, OrderLine.product_id == product_id
            )
            .order_by(Backorder.priority, Backorder.created_at, Backorder.id)
        )
        .scalars()
        .all()
    )
    for backorder in backorders:
        line = backorder.order_line
        with unit_of_work():
            state = AllocationState([line], _warehouses())
            taken = _allocate_line(line, state)
            if not taken:
                break
            _sync_backorder(line, utcnow().date(), state)
            state.write(actor)
            audit.record(
                actor,
                "backorder",
                backorder.id,
                "fill",
                detail={"order": line.order.number, "line": line.line_no, "allocated": taken},
            )
            _settle_status(line.order, actor)
        filled.append(f"{line.order.number}/{line.line_no}")
    return filled


def ship(
    order: SalesOrder,
    actor: Actor,
    *,
    warehouse_id: int,
    lines: Mapping[int, int],
    carrier: str,
    tracking_number: str | None = None,
    ship_date: date | None = None,
    eta: date | None = None,
    delay_reason: str | None = None,
) -> Shipment:
    """Ship allocated units of some lines from one warehouse (partial shipments allowed)."""
    require(actor, "can_write", SHIPMENT_VIEW, "ship orders")
    if order.status not in SHIPPABLE:
        raise ConflictError(f"order {order.number} is {order.status}; nothing is allocated")
    errors: dict[str, list[str]] = {}
    if not (carrier or "").strip():
        errors["carrier"] = ["is required"]
    if not lines:
        errors["lines"] = ["give at least one line and quantity"]
    ship_date = ship_date or utcnow().date()
    if eta is not None and eta < ship_date:
        errors["eta"] = ["is before the ship date"]
    errors.update(date_errors(ship_date=ship_date, eta=eta))
    late = eta is not None and order.promised_date is not None and eta > order.promised_date
    if late and delay_reason not in DELAY_REASONS:
        errors["delay_reason"] = [
            f"the ETA {eta} is after the promised date {order.promised_date}: "
            f"give a delay reason ({', '.join(DELAY_REASONS)})"
        ]
    by_id = {line.id: line for line in order.lines}
    reserved = _allocation_rows([line_id for line_id in lines if line_id in by_id], warehouse_id)
    problems = orders.line_quantity_errors(
        order,
        lines,
        lambda line: reserved[line.id].quantity if line.id in reserved else 0,
        "only {limit} allocated in that warehouse",
    )
    if problems:
        errors.setdefault("lines", []).extend(problems)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        shipment = Shipment(
            number=numbering.next_number("shipment"),
            order_id=order.id,
            warehouse_id=warehouse_id,
            carrier=carrier.strip(),
            tracking_number=(tracking_number or "").strip() or None,
            ship_date=ship_date,
            eta=eta,
            status=ShipmentStatus.SHIPPED.value,
            delay_reason=delay_reason if late else None,
        )
        db.session.add(shipment)
        levels = _stock_levels([by_id[line_id].product_id for line_id in lines], warehouse_id)
        moves = []
        for line_id, quantity in lines.items():
            line = by_id[line_id]
            moves.append(
                inventory.Move(
                    levels[line.product_id],
                    on_hand_delta=-quantity,
                    allocated_delta=-quantity,
                    reference=shipment.number,
                )
            )
            reserved[line_id].quantity -= quantity
            line.qty_allocated -= quantity
            line.qty_shipped += quantity
            shipment.lines.append(ShipmentLine(order_line_id=line.id, quantity=quantity))
        inventory.move_many(moves, MovementKind.SHIPMENT, actor)
        db.session.flush()
        audit.record(
            actor,
            "shipment",
            shipment.id,
            "create",
            after={
                "number": shipment.number,
                "order": order.number,
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "eta": eta,
                "lines": {by_id[k].line_no: v for k, v in lines.items()},
            },
        )
        _settle_status(order, actor)
        notifications.notify(order, "shipped", actor, shipment=shipment)
        if late:
            notifications.notify(
                order,
                "delayed",
                actor,
                shipment=shipment,
                delay_reason=DELAY_REASONS[delay_reason],
            )
    return shipment


@dataclass(frozen=True)
class Attention:
    """An order needing attention and why."""

    order: SalesOrder
    reason: str


def needs_attention(today: date | None = None, horizon_days: int = 2) -> list[Attention]:
    """Late shipments, orders at risk of missing their promise, and backordered orders."""
    today = today or utcnow().date()
    found: dict[int, Attention] = {}
    late = db.session.execute(
        select(Shipment)
        .join(SalesOrder, Shipment.order_id == SalesOrder.id)
        .where(
            Shipment.status == ShipmentStatus.SHIPPED.value,
            SalesOrder.promised_date.is_not(None),
            Shipment.eta > SalesOrder.promised_date,
        )
    ).scalars()
    for shipment in late:
        found.setdefault(
            shipment.order_id,
            Attention(shipment.order, f"late: {shipment.number} ETA {shipment.eta}"),
        )
    at_risk = db.session.execute(
        select(SalesOrder).where(
            SalesOrder.status.in_(
                (
                    OrderStatus.CONFIRMED.value,
                    OrderStatus.PARTIALLY_ALLOCATED.value,
                    OrderStatus.ALLOCATED.value,
                    OrderStatus.PARTIALLY_SHIPPED.value,
                )
            ),
            SalesOrder.promised_date <= today + timedelta(days=horizon_days),
        )
    ).scalars()
    for order in at_risk:
        reason = "overdue" if order.promised_date < today else "at risk"
        found.setdefault(order.id, Attention(order, f"{reason}: promised {order.promised_date}"))
    backordered = db.session.execute(
        select(SalesOrder)
        .join(OrderLine, OrderLine.order_id == SalesOrder.id)
        .join(Backorder, Backorder.order_line_id == OrderLine.id)
        .where(Backorder.status == BackorderStatus.OPEN.value)
        .distinct()
    ).scalars()
    for order in backordered:
        found.setdefault(order.id, Attention(order, "backordered"))
    return sorted(found.values(), key=lambda item: item.order.id)
