"""Goods receipts: stock arriving in a warehouse, kept as a numbered record.

:func:`record_receipt` is the one way a receipt is made (browser, REST, CLI): it checks the
input (an active product, an active warehouse, a whole quantity above 0), writes the
``StockReceipt``, books the same quantity through the inventory ledger
(``inventory.book_receipt``, whose ``stock_received`` announcement gets waiting backorders
filled by a job once the transaction commits) and audits the receipt, all in one unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    Backorder,
    BackorderStatus,
    OrderLine,
    Product,
    StockLevel,
    StockReceipt,
    Warehouse,
    utcnow,
)
from portal.services import audit, inventory, numbering
from portal.services.base import Actor, ValidationFailed, require, unit_of_work

RECEIPT_VIEW = "StockReceipt"
QUANTITY_MESSAGE = "must be a whole number above 0"


@dataclass
class Received:
    """A receipt just made, and the open backorders its stock will fill (in fill order:
    highest priority, then oldest), as ``SO-000012/1`` order/line names."""

    receipt: StockReceipt
    to_fill: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line saying what arrived and what it fills, for a flash or the CLI."""
        receipt = self.receipt
        text = (
            f"Received {receipt.quantity} {receipt.product.unit} of {receipt.product.sku} "
            f"into {receipt.warehouse.name} ({receipt.number})"
        )
        count = len(self.to_fill)
        if not count:
            return f"{text}; no backorders were waiting"
        noun = "backorder" if count == 1 else "backorders"
        return f"{text}; {count} {noun} will be filled: {', '.join(self.to_fill)}"


def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _length_errors(errors: dict[str, list[str]], **values: str | None) -> None:
    columns = StockReceipt.__table__.columns
    for name, value in values.items():
        size = columns[name].type.length
        if value is not None and len(value) > size:
            errors[name] = [f"is longer than {size} characters"]


def _checked(
    product_id: object, warehouse_id: object, quantity: object, errors: dict[str, list[str]]
) -> tuple[Product | None, Warehouse | None]:
    product = warehouse = None
    if isinstance(product_id, int) and not isinstance(product_id, bool):
        product = db.session.get(Product, product_id)
    if product is None:
        errors["product_id"] = [f"no product {product_id}"]
    elif not product.active:
        errors["product_id"] = [f"{product.sku} is not active"]
    if isinstance(warehouse_id, int) and not isinstance(warehouse_id, bool):
        warehouse = db.session.get(Warehouse, warehouse_id)
    if warehouse is None:
        errors["warehouse_id"] = [f"no warehouse {warehouse_id}"]
    elif not warehouse.active:
        errors["warehouse_id"] = [f"{warehouse.code} is not active"]
    if not inventory.whole_positive(quantity):
        errors["quantity"] = [QUANTITY_MESSAGE]
    return product, warehouse


def record_receipt(
    product_id: int,
    warehouse_id: int,
    quantity: int,
    actor: Actor,
    *,
    reference: str | None = None,
    note: str | None = None,
) -> Received:
    """Receive ``quantity`` units (the product's unit) of a product into a warehouse.

    ``reference`` is the purchase order or delivery note it came with. Refused with 403
    without ``can_write`` on receipts, 422 naming each bad field.
    """
    require(actor, "can_write", RECEIPT_VIEW, "receive stock")
    reference, note = _clean(reference), _clean(note)
    errors: dict[str, list[str]] = {}
    _length_errors(errors, reference=reference, note=note)
    with unit_of_work():
        product, warehouse = _checked(product_id, warehouse_id, quantity, errors)
        if errors or product is None or warehouse is None:
            raise ValidationFailed(errors)
        receipt = StockReceipt(
            number=numbering.next_number("stock_receipt"),
            product=product,
            warehouse=warehouse,
            quantity=quantity,
            reference=reference,
            note=note,
            received_at=utcnow(),
            received_by=actor.name,
        )
        db.session.add(receipt)
        inventory.book_receipt(product.id, warehouse.id, quantity, actor, receipt.number)
        audit.record(
            actor,
            "stock_receipt",
            receipt,
            "create",
            after={
                "number": receipt.number,
                "product": product.sku,
                "warehouse": warehouse.code,
                "quantity": quantity,
                "reference": reference,
                "note": note,
            },
        )
        received = Received(receipt, backorders_to_fill(product.id))
    return received


def backorders_to_fill(product_id: int) -> list[str]:
    """The open backorders of a product that its available stock (in active warehouses)
    fills, at least in part, in the order the fill job takes them."""
    available = db.session.execute(
        select(func.coalesce(func.sum(StockLevel.on_hand - StockLevel.allocated), 0))
        .join(Warehouse, StockLevel.warehouse_id == Warehouse.id)
        .where(StockLevel.product_id == product_id, Warehouse.active.is_(True))
    ).scalar_one()
    rows = db.session.execute(
        select(Backorder.quantity, OrderLine)
        .join(OrderLine, Backorder.order_line_id == OrderLine.id)
        .where(OrderLine.product_id == product_id, Backorder.status == BackorderStatus.OPEN.value)
        .order_by(Backorder.priority, Backorder.created_at, Backorder.id)
    ).all()
    filled: list[str] = []
    for quantity, line in rows:
        if available <= 0:
            break
        available -= min(quantity, available)
        filled.append(f"{line.order.number}/{line.line_no}")
    return filled
