"""Stock levels in a tracker (key ``SKU@WAREHOUSE``): a sheet edit of on hand is a counted
adjustment through the inventory service."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, select

from portal.models import Product, StockLevel, Warehouse
from portal.services import inventory
from portal.services.base import Actor, NotFound, ServiceError, ValidationFailed
from portal.sync.base import Field, Kind, Row, fields_of, select_chunks
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
    batch_updates = True
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

    def update_many(
        self, items: Sequence[tuple[str, Mapping[str, Any]]], actor: Actor, tracker_name: str
    ) -> list[ServiceError | None]:
        """The levels of ``items`` loaded with one query per chunk of SKUs, then one
        ``inventory.adjust_many`` for the counts."""
        query = (
            select(StockLevel, Product.sku, Warehouse.code)
            .join(Product, StockLevel.product_id == Product.id)
            .join(Warehouse, StockLevel.warehouse_id == Warehouse.id)
        )
        skus = set()
        for key, _ in items:
            with contextlib.suppress(NotFound):  # not a stock key: "no stock level" below
                skus.add(split_stock_key(key)[0])
        found = {
            f"{sku}@{code}": level
            for _, (level, sku, code) in select_chunks(query, sorted(skus), self._of_skus)
        }
        outcomes: list[ServiceError | None] = [None] * len(items)
        counts, where = [], []
        for index, (key, changes) in enumerate(items):
            try:
                self.check_fields(changes, "editable")
                if key not in found:
                    raise NotFound(f"no stock level {key}")
                if changes["on_hand"] is None:
                    raise ValidationFailed({"on_hand": ["is required"]})
            except ServiceError as error:
                outcomes[index] = error
                continue
            counts.append((found[key], changes["on_hand"]))
            where.append(index)
        adjusted = inventory.adjust_many(counts, f"sheet {tracker_name}", actor)
        for index, error in zip(where, adjusted, strict=True):
            outcomes[index] = error
        return outcomes

    @staticmethod
    def _of_skus(query: Select, skus: list[str]) -> Select:
        return query.where(Product.sku.in_(skus))

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        """One count (see :meth:`update_many`)."""
        error = self.update_many([(key, changes)], actor, tracker_name)[0]
        if error is not None:
            raise error
