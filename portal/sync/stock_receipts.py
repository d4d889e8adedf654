"""Goods receipts in a tracker (key: the receipt number, ``GR-000001``): a row naming a
product (SKU), a warehouse (code) and a quantity is received through the receipts service.
Receipts are never edited: every column is the portal's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select

from portal.extensions import db
from portal.models import Product, StockReceipt, Warehouse
from portal.services import receipts
from portal.services.base import Actor, ValidationFailed
from portal.sync.base import Field, Kind, Row, fields_of
from sheets.trackers import Column


def product_id_by_sku(sku: Any) -> int | None:
    """The id of the product with this SKU (any case), or None."""
    return db.session.execute(
        select(Product.id).where(func.lower(Product.sku) == str(sku).strip().lower())
    ).scalar_one_or_none()


def warehouse_id_by_code(code: Any) -> int | None:
    """The id of the warehouse with this code (any case), or None."""
    return db.session.execute(
        select(Warehouse.id).where(func.lower(Warehouse.code) == str(code).strip().lower())
    ).scalar_one_or_none()


class StockReceiptsKind(Kind):
    name = "stock_receipts"
    key_field = "number"
    key_header = "Receipt"
    fields = fields_of(
        Field("sku", creatable=True),
        Field("product"),
        Field("warehouse", creatable=True),
        Field("quantity", "int", creatable=True),
        Field("reference", creatable=True),
        Field("note", creatable=True),
        Field("received_on", "date"),
        Field("received_by"),
    )
    can_create = True
    preset = (
        Column("SKU", "sku", "text", "portal"),
        Column("Product", "product", "text", "portal"),
        Column("Warehouse", "warehouse", "text", "portal"),
        Column("Qty", "quantity", "int", "portal"),
        Column("Reference", "reference", "text", "portal"),
        Column("Received on", "received_on", "date", "portal"),
        Column("Received by", "received_by", "text", "portal"),
    )
    columns = {
        "id": StockReceipt.id,
        "number": StockReceipt.number,
        "sku": Product.sku,
        "product": Product.name,
        "warehouse": Warehouse.code,
        "quantity": StockReceipt.quantity,
        "reference": StockReceipt.reference,
        "note": StockReceipt.note,
        "received_at": StockReceipt.received_at,
        "received_by": StockReceipt.received_by,
    }

    def query(self, filter: str | None) -> Select:
        return (
            select(*self.columns.values())
            .join(Product, StockReceipt.product_id == Product.id)
            .join(Warehouse, StockReceipt.warehouse_id == Warehouse.id)
        )

    def finish(self, row: Row) -> None:
        row["received_on"] = row["received_at"].date()

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")  # nothing is: a receipt is never edited

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        self.check_fields(values, "creatable")
        sku, code, quantity = values.get("sku"), values.get("warehouse"), values.get("quantity")
        errors: dict[str, list[str]] = {}
        product_id = product_id_by_sku(sku) if sku else None
        warehouse_id = warehouse_id_by_code(code) if code else None
        if product_id is None:
            errors["sku"] = [f"no product with SKU {sku}" if sku else "is required"]
        if warehouse_id is None:
            errors["warehouse"] = [f"no warehouse {code}" if code else "is required"]
        if quantity is None:
            errors["quantity"] = ["is required"]
        if errors:
            raise ValidationFailed(errors)
        received = receipts.record_receipt(
            product_id,  # type: ignore[arg-type]
            warehouse_id,  # type: ignore[arg-type]
            quantity,  # type: ignore[arg-type]
            actor,
            reference=values.get("reference"),
            note=values.get("note"),
        )
        return received.receipt.number
