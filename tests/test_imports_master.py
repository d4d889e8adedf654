"""``orderbridge import customers|products|stock``, and the import's progress bar on a
terminal (a real pseudo-terminal) but not elsewhere."""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from portal.extensions import db
from portal.imports_cli import ProgressBar
from portal.models import Customer, InventoryMovement, Product, StockLevel
from tests.factories import make_catalog
from tests.import_files import write_xlsx


def _run(app, *args: str) -> dict:
    done = app.test_cli_runner().invoke(args=["import", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _outcomes(report: dict) -> list[tuple[str, str]]:
    return [(row["outcome"], row["reason"]) for row in report["rows"]]


def test_customers_are_created_updated_or_left_by_their_code(app, clean_db, tmp_path) -> None:
    headers = ["Customer ID", "Customer Name", "Segment", "Region"]
    rows = [["CG-1", "Claire Gute", "Consumer", "South"], ["ZM-2", "Zoë Müller", "", "West"]]
    path = write_xlsx(tmp_path / "customers.xlsx", headers, rows)
    first = _run(app, "customers", str(path))
    assert _outcomes(first) == [("created", ""), ("created", "")]
    stored = db.session.scalar(select(Customer).where(Customer.code == "CG-1"))
    assert (stored.name, stored.segment, stored.region) == ("Claire Gute", "Consumer", "South")
    assert _outcomes(_run(app, "customers", str(path))) == [("unchanged", "")] * 2
    rows[1][2] = "Corporate"
    rows.append(["", "No Code", "", ""])
    path = write_xlsx(tmp_path / "customers.xlsx", headers, rows)
    corrected = _run(app, "customers", str(path))
    assert _outcomes(corrected) == [("unchanged", ""), ("updated", ""), ("refused", "no code")]
    db.session.expire_all()
    assert db.session.scalar(select(Customer.segment).where(Customer.code == "ZM-2")) == "Corporate"


def test_products_and_stock_go_through_the_catalog_and_the_ledger(app, clean_db, tmp_path):
    make_catalog(stock=0)  # warehouses W1 and W2, products SKU-1..3
    products = write_xlsx(
        tmp_path / "products.xlsx",
        ["SKU", "Name", "Category", "List price"],
        [["SKU-9", "Lamp", "Furniture", 12.5], ["SKU-1", "Product 1", "Office", "-3"]],
    )
    report = _run(app, "products", str(products))
    assert _outcomes(report) == [
        ("created", ""),
        ("refused", "Invalid input — list_price: must not be negative"),
    ]
    lamp = db.session.scalar(select(Product).where(Product.sku == "SKU-9"))
    assert (lamp.category, lamp.list_price) == ("Furniture", Decimal("12.5000"))
    assert len(db.session.scalars(select(StockLevel).where(StockLevel.product == lamp)).all()) == 2
    stock = write_xlsx(
        tmp_path / "stock.xlsx",
        ["SKU", "Warehouse", "On hand"],
        [["SKU-9", "W1", 40], ["SKU-9", "W2", 0], ["SKU-404", "W1", 3]],
    )
    counted = _run(app, "stock", str(stock))
    assert _outcomes(counted) == [
        ("updated", ""),
        ("unchanged", ""),
        ("refused", "no product 'SKU-404'"),
    ]
    movement = db.session.scalar(select(InventoryMovement).where(InventoryMovement.product == lamp))
    assert (movement.kind, movement.on_hand_delta, movement.reason) == (
        "adjustment",
        40,
        "import: stock count",
    )


def test_the_progress_bar_draws_rows_per_second_and_time_left_on_a_terminal_only() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        bar = ProgressBar("import orders", terminal)
        bar(500, 1000)
        bar.close()
    drawn = os.read(leader, 4096).decode()
    os.close(leader)
    assert "import orders [###############...............] 500/1000 rows" in drawn
    assert "rows/s" in drawn and "s left" in drawn
    piped = io.StringIO()
    bar = ProgressBar("import orders", piped)
    bar(500, 1000)
    bar.close()
    assert piped.getvalue() == ""


def test_a_mapping_is_suggested_when_none_is_given(app, clean_db, tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "customers.xlsx",
        ["Notes: exported 2024-05-01", None, None],
        [[None, None, None], ["Customer code", "Company name", "Segment"], ["K-1", "Kay", "SMB"]],
    )
    done = app.test_cli_runner().invoke(args=["import", "customers", str(path), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["mapping"] == {
        "Customer code": "customer_code",
        "Company name": "customer_name",
        "Segment": "segment",
    }
    assert [(row["row"], row["outcome"]) for row in report["rows"]] == [(4, "created")]
