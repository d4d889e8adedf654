"""Stock levels in a tracker (key ``SKU@WAREHOUSE``): a sheet edit of on hand is a counted
adjustment through the inventory service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select

from portal.extensions import db
from portal.models import Product, StockLevel, Warehouse
from portal.services import inventory
from portal.services.base import Actor, NotFound, ValidationFailed
from portal.sync.base import Field, Kind, Row, fields_of
from sheets.trackers import Column


def split_stock_key(key: str) -> tuple[str, str]:
    """``SKU-1@W1`` -> (``SKU-1``, ``W1``); NotFound for anything else."""
    sku, sep, warehouse = key.rpartition("@")
    if not sep:
        raise NotFound(f"{key!r} is not a stock key (SKU@WAREHOUSE, e.g. SKU-1@W1)")
    return sku.strip(), warehouse.strip()


class StockLevelsKind(Kind):
    name = "stock_levels"
    entities = frozenset(("stock_level", "stock_receipt"))
    key_field = "stock_key"
    key_header = "SKU @ warehouse"
    fields = fields_of(
        Field("sku"),
        Field("product"),
        Field("warehouse"),
        Field("on_hand", "int", editable=True),
        Field("allocated", "int"),
        Field("available", "int"),
        Field("reorder_point", "int"),
    )
    filters = {"active": "active products in active warehouses"}
    preset = (
        Column("SKU", "sku", "text", "portal"),
        Column("Product", "product", "text", "portal"),
        Column("Warehouse", "warehouse", "text", "portal"),
        Column("On hand", "on_hand", "int", "both"),
        Column("Allocated", "allocated", "int", "portal"),
        Column("Available", "available", "int", "portal"),
    )
    columns = {
        "id": StockLevel.id,
        "sku": Product.sku,
        "product": Product.name,
        "warehouse": Warehouse.code,
        "on_hand": StockLevel.on_hand,
        "allocated": StockLevel.allocated,
        "reorder_point": StockLevel.reorder_point,
    }

    def query(self, filter: str | None) -> Select:
        query = (
            select(*self.columns.values())
            .join(Product, StockLevel.product_id == Product.id)
            .join(Warehouse, StockLevel.warehouse_id == Warehouse.id)
        )
        if filter == "active":
            query = query.where(Product.active.is_(True), Warehouse.active.is_(True))
        return query

    def narrow(self, query: Select, keys: list[str]) -> Select:
        return query.where(Product.sku.in_({split_stock_key(k)[0] for k in keys}))

    def finish(self, row: Row) -> None:
        row["stock_key"] = f"{row['sku']}@{row['warehouse']}"
        row["available"] = row["on_hand"] - row["allocated"]

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        sku, code = split_stock_key(key)
        level = db.session.execute(
            select(StockLevel)
            .join(Product, StockLevel.product_id == Product.id)
            .join(Warehouse, StockLevel.warehouse_id == Warehouse.id)
            .where(Product.sku == sku, Warehouse.code == code)
        ).scalar_one_or_none()
        if level is None:
            raise NotFound(f"no stock level {key}")
        new_on_hand = changes["on_hand"]
        if new_on_hand is None:
            raise ValidationFailed({"on_hand": ["is required"]})
        inventory.adjust(level, new_on_hand, f"sheet {tracker_name}", actor)
