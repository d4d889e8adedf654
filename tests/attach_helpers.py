"""Helpers of the attach tests: the teams' real workbooks, their master data, byte checks."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, OrderLine, SalesOrder, SyncRun, Tracker, Warehouse
from portal.services import catalog
from portal.services.base import unit_of_work
from tests.conftest import shared_path
from tests.factories import SETUP

SUPERSTORE = ("data", "superstore", "Sample - Superstore.xlsx")
NORTHWIND = ("data", "northwind", "Northwind.xlsx")


def copy_book(parts: tuple[str, ...], folder: Path) -> Path:
    """A writable copy of a shared workbook."""
    target = folder / Path(parts[-1]).name.replace(" ", "_")
    shutil.copyfile(shared_path(*parts), target)
    target.chmod(0o644)
    return target


def sheet_rows(path: Path, sheet: str) -> list[list[Any]]:
    """A sheet's values as calamine reads them."""
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def members(path: Path) -> dict[str, str]:
    """zip member -> sha256 of its bytes."""
    with zipfile.ZipFile(path) as zf:
        return {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}


def db_state() -> dict[str, int]:
    """Row counts that any write would change."""
    return {
        model.__tablename__: db.session.execute(
            select(func.count()).select_from(model)
        ).scalar_one()
        for model in (SalesOrder, OrderLine, AuditEvent, Tracker, SyncRun)
    }


def seed_customers(pairs: dict[str, str]) -> None:
    """Customers (code -> name) through the catalog service, in one transaction."""
    with unit_of_work():
        for code, name in pairs.items():
            catalog.customers.build(
                {"code": code, "name": name, "credit_limit": Decimal("1000000")}, SETUP
            )


def seed_products(pairs: dict[str, str], price: Decimal = Decimal("10.00")) -> None:
    """Products (sku -> name) through the catalog service, in one transaction (built, not
    flushed one by one: there is no warehouse yet, so no stock level to add)."""
    assert not db.session.execute(select(Warehouse.id)).first()
    with unit_of_work():
        for sku, name in pairs.items():
            catalog.products.build({"sku": sku, "name": name, "list_price": price}, SETUP)


def write_mapping(path: Path, mapping: dict[str, str | None]) -> Path:
    path.write_text(json.dumps(mapping), encoding="utf-8")
    return path
