"""Stock levels and the inventory movement ledger.

Stock levels change only here, and every change writes a ledger movement, so on hand and
allocated per product and warehouse always equal the sum of their movements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from portal.extensions import db
from portal.models import InventoryMovement, MovementKind, StockLevel, utcnow
from portal.services import audit, events
from portal.services.base import (
    Actor,
    NotFound,
    PermissionDenied,
    ServiceError,
    ValidationFailed,
    save_versioned,
    unit_of_work,
)

STOCK_VIEW = "StockLevel"


def stock_level(product_id: int, warehouse_id: int, *, lock: bool = False) -> StockLevel:
    """The stock level row of a product in a warehouse (``lock`` takes a row lock)."""
    query = select(StockLevel).where(
        StockLevel.product_id == product_id, StockLevel.warehouse_id == warehouse_id
    )
    if lock:
        # Lock the row and re-read it: another transaction may have changed it since this
        # session last loaded it.
        query = query.with_for_update().execution_options(populate_existing=True)
    level = db.session.execute(query).scalar_one_or_none()
    if level is None:
        raise NotFound(f"no stock level for product {product_id} in warehouse {warehouse_id}")
    return level


@dataclass(frozen=True)
class Move:
    """One ledger movement of a stock level: what changes, and the document behind it."""

    level: StockLevel
    on_hand_delta: int = 0
    allocated_delta: int = 0
    reference: str | None = None
    reason: str | None = None


def move_many(moves: Sequence[Move], kind: MovementKind, actor: Actor) -> None:
    """Apply ledger movements to their stock levels in the current transaction.

    Every movement is checked first (on hand never below 0, allocated between 0 and on
    hand, movements of the same level applied in order); then the levels are written with one
    versioned UPDATE and the movements with one INSERT, however many there are.
    """
    if not moves:
        return
    after: dict[int, tuple[StockLevel, int, int]] = {}
    for item in moves:
        level, on_hand, allocated = after.get(
            id(item.level), (item.level, item.level.on_hand, item.level.allocated)
        )
        if on_hand + item.on_hand_delta < 0:
            raise ValidationFailed({"quantity": [f"only {on_hand} on hand"]})
        on_hand += item.on_hand_delta
        allocated += item.allocated_delta
        if allocated < 0 or allocated > on_hand:
            raise ValidationFailed(
                {"quantity": [f"would leave {allocated} allocated of {on_hand} on hand"]}
            )
        after[id(level)] = (level, on_hand, allocated)
    for level, on_hand, allocated in after.values():
        level.on_hand, level.allocated = on_hand, allocated
    sess = db.session
    save_versioned(sess, [level for level, _, _ in after.values()], ("on_hand", "allocated"))
    now = utcnow()
    sess.execute(
        insert(InventoryMovement.__table__),
        [
            {
                "occurred_at": now,
                "kind": kind.value,
                "product_id": item.level.product_id,
                "warehouse_id": item.level.warehouse_id,
                "on_hand_delta": item.on_hand_delta,
                "allocated_delta": item.allocated_delta,
                "reference": item.reference,
                "reason": item.reason,
                "actor": actor.name,
            }
            for item in moves
        ],
    )


def move(
    level: StockLevel,
    kind: MovementKind,
    actor: Actor,
    *,
    on_hand_delta: int = 0,
    allocated_delta: int = 0,
    reference: str | None = None,
    reason: str | None = None,
) -> None:
    """Apply one ledger movement to ``level`` (see :func:`move_many`)."""
    move_many([Move(level, on_hand_delta, allocated_delta, reference, reason)], kind, actor)


def receive(
    product_id: int, warehouse_id: int, quantity: int, actor: Actor, reference: str | None = None
) -> StockLevel:
    """Book a goods receipt of ``quantity`` units (the ledger only; a receipt record is
    ``receipts.record_receipt``, which books through :func:`book_receipt` too)."""
    if not actor.can("can_write", STOCK_VIEW):
        raise PermissionDenied(f"{actor.name} may not receive stock")
    if not whole_positive(quantity):
        raise ValidationFailed({"quantity": ["must be a whole number above 0"]})
    with unit_of_work():
        return book_receipt(product_id, warehouse_id, quantity, actor, reference)


def whole_positive(quantity: object) -> bool:
    """Whether ``quantity`` is a whole number above 0 (``True`` is not a quantity)."""
    return isinstance(quantity, int) and not isinstance(quantity, bool) and quantity > 0


def book_receipt(
    product_id: int, warehouse_id: int, quantity: int, actor: Actor, reference: str | None
) -> StockLevel:
    """Inside the caller's unit of work (whose permission check it relies on): the receipt
    movement, its audit event, and ``stock_received`` so waiting backorders get filled."""
    level = stock_level(product_id, warehouse_id, lock=True)
    before = level.on_hand
    move(level, MovementKind.RECEIPT, actor, on_hand_delta=quantity, reference=reference)
    db.session.flush()
    audit.record(
        actor,
        "stock_level",
        level.id,
        "receive",
        before={"on_hand": before},
        after={"on_hand": level.on_hand},
        detail={"reference": reference, "quantity": quantity},
    )
    events.announce(
        events.STOCK_RECEIVED,
        product_id=product_id,
        open_backorders=_has_open_backorders(product_id),
    )
    return level


def _has_open_backorders(product_id: int) -> bool:
    from portal.models import Backorder, BackorderStatus, OrderLine

    return (
        db.session.execute(
            select(Backorder.id)
            .join(OrderLine, Backorder.order_line_id == OrderLine.id)
            .where(
                OrderLine.product_id == product_id, Backorder.status == BackorderStatus.OPEN.value
            )
            .limit(1)
        ).first()
        is not None
    )


def adjust(level: StockLevel, new_on_hand: int, reason: str, actor: Actor) -> StockLevel:
    """Set on hand after a count; the difference is booked as an adjustment movement."""
    error = adjust_many([(level, new_on_hand)], reason, actor)[0]
    if error is not None:
        raise error
    return level


def adjust_many(
    counts: Sequence[tuple[StockLevel, int]], reason: str, actor: Actor
) -> list[ServiceError | None]:
    """Set the on hand of many levels after a count (each ``(level, new on hand)``), in one
    unit of work: each count is checked alone (a refused one books nothing and its error is
    returned at its position; None: booked), the booked ones are written by one
    :func:`move_many` and audited one event each."""
    if not actor.can("can_write", STOCK_VIEW):
        raise PermissionDenied(f"{actor.name} may not adjust stock")
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["is required for a stock adjustment"]})
    reason = reason.strip()
    outcomes: list[ServiceError | None] = []
    booked: list[tuple[StockLevel, int]] = []
    for level, new_on_hand in counts:
        if not isinstance(new_on_hand, int) or isinstance(new_on_hand, bool) or new_on_hand < 0:
            outcomes.append(ValidationFailed({"on_hand": ["must be a whole number of 0 or more"]}))
        elif level.allocated > new_on_hand:
            left = f"would leave {level.allocated} allocated of {new_on_hand} on hand"
            outcomes.append(ValidationFailed({"quantity": [left]}))
        else:
            outcomes.append(None)
            if new_on_hand != level.on_hand:
                booked.append((level, new_on_hand))
    with unit_of_work():
        before = {id(level): level.on_hand for level, _ in booked}
        moves = [Move(level, on_hand - level.on_hand, 0, None, reason) for level, on_hand in booked]
        move_many(moves, MovementKind.ADJUSTMENT, actor)
        for level, _ in booked:
            audit.record(
                actor,
                "stock_level",
                level.id,
                "adjust",
                before={"on_hand": before[id(level)]},
                after={"on_hand": level.on_hand},
                detail={"reason": reason},
            )
    return outcomes


def ledger_discrepancies() -> list[tuple[int, int, int, int]]:
    """Stock levels whose on hand / allocated differ from the ledger's sums (should be none)."""
    sums = (
        select(
            InventoryMovement.product_id,
            InventoryMovement.warehouse_id,
            func.sum(InventoryMovement.on_hand_delta).label("on_hand"),
            func.sum(InventoryMovement.allocated_delta).label("allocated"),
        )
        .group_by(InventoryMovement.product_id, InventoryMovement.warehouse_id)
        .subquery()
    )
    rows = db.session.execute(
        select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.on_hand, sums.c.on_hand)
        .outerjoin(
            sums,
            (sums.c.product_id == StockLevel.product_id)
            & (sums.c.warehouse_id == StockLevel.warehouse_id),
        )
        .where(
            (func.coalesce(sums.c.on_hand, 0) != StockLevel.on_hand)
            | (func.coalesce(sums.c.allocated, 0) != StockLevel.allocated)
        )
    ).all()
    return [tuple(row) for row in rows]
