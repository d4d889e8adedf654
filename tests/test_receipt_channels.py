"""Goods receipts through each channel: REST, the browser form and list, the CLI."""

from __future__ import annotations

import html
import re

import pytest

from portal.extensions import db
from portal.models import AuditEvent, StockReceipt
from portal.services import inventory
from tests.conftest import api_headers, login
from tests.factories import make_catalog
from tests.test_receipts import backordered_order

URL = "/api/v1/stock_receipt/"


def _flashes(page: str) -> list[str]:
    found = re.findall(r"<div class=\"alert alert-[a-z]+\">(.*?)</div>", page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>|&times;|\s+", " ", item)).strip() for item in found]


# -- REST ------------------------------------------------------------------------------------


def test_post_creates_a_receipt_and_get_lists_and_shows_it(clean_db) -> None:
    data = make_catalog(stock=0)
    headers = api_headers(clean_db, "specialist")
    client = clean_db.test_client()
    body = {
        "product_id": data.products[0].id,
        "warehouse_id": data.warehouses[0].id,
        "quantity": 120,
        "reference": "PO-1",
        "note": "dock 3",
    }
    created = client.post(URL, json=body, headers=headers)
    assert created.status_code == 201, created.json
    result = created.json["result"]
    assert result["number"] == "GR-000001"
    assert result["quantity"] == 120 and result["received_by"] == "specialist"
    assert result["product"]["sku"] == "SKU-1"
    assert inventory.stock_level(data.products[0].id, data.warehouses[0].id).on_hand == 120
    listed = client.get(URL, headers=api_headers(clean_db, "auditor"))
    assert listed.status_code == 200
    assert [row["number"] for row in listed.json["result"]] == ["GR-000001"]
    shown = client.get(f"{URL}{created.json['id']}", headers=headers)
    assert shown.json["result"]["reference"] == "PO-1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": 2.5}, "quantity"),
        ({"quantity": "12"}, "quantity"),
        ({"product_id": 999999}, "product_id"),
        ({"warehouse_id": 999999}, "warehouse_id"),
        ({"reference": "x" * 81}, "reference"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(clean_db, change, field) -> None:
    data = make_catalog(stock=0)
    body = {"product_id": data.products[0].id, "warehouse_id": data.warehouses[0].id}
    body = {**body, "quantity": 5, **change}
    answer = clean_db.test_client().post(
        URL, json=body, headers=api_headers(clean_db, "specialist")
    )
    assert answer.status_code == 422, answer.json
    errors = answer.json.get("errors") or answer.json["message"]
    assert field in errors
    assert db.session.query(StockReceipt).count() == 0


def test_an_auditor_gets_403_and_the_refusal_is_audited(clean_db) -> None:
    data = make_catalog(stock=0)
    body = {"product_id": data.products[0].id, "warehouse_id": data.warehouses[0].id}
    answer = clean_db.test_client().post(
        URL, json={**body, "quantity": 5}, headers=api_headers(clean_db, "auditor")
    )
    assert answer.status_code == 403
    db.session.expire_all()
    assert db.session.query(StockReceipt).count() == 0
    refused = db.session.query(AuditEvent).filter_by(action="create_refused").one()
    assert (refused.entity, refused.actor) == ("stock_receipt", "auditor")


# -- Browser ---------------------------------------------------------------------------------


def test_the_form_lands_on_the_receipt_with_a_flash_saying_what_it_fills(clean_db) -> None:
    data = make_catalog(stock=0)
    order = backordered_order(data, "PO-WAIT")
    client = login(clean_db, "specialist")
    form = client.get("/receive-stock/")
    assert form.status_code == 200 and "Main (W1)" in form.text
    done = client.post(
        "/receive-stock/",
        data={
            "product": "sku-1",
            "warehouse_id": str(data.warehouses[0].id),
            "quantity": "12",
            "reference": "PO-77",
        },
    )
    receipt = db.session.query(StockReceipt).one()
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"/stockreceiptview/show/{receipt.id}")
    page = client.get(done.headers["Location"])
    assert (
        f"Received 12 ea of SKU-1 into Main (GR-000001); 1 backorder will be filled: "
        f"{order.number}/1" in _flashes(page.text)
    )
    assert "SKU-1 Product 1" in page.text and "PO-77" in page.text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page.text)


def test_a_bad_quantity_shows_the_form_again_with_the_input_kept(clean_db) -> None:
    data = make_catalog(stock=0)
    client = login(clean_db, "specialist")
    typed = {
        "product": "SKU-2",
        "warehouse_id": str(data.warehouses[1].id),
        "quantity": "2.5",
        "reference": "PO-KEEP",
        "note": "half a box?",
    }
    answer = client.post("/receive-stock/", data=typed)
    assert answer.status_code == 422
    assert "Quantity: not a whole number" in " ".join(_flashes(answer.text))
    assert 'id="error-quantity"' in answer.text
    for value in ("SKU-2", "2.5", "PO-KEEP", "half a box?"):
        assert f'value="{value}"' in answer.text
    assert f'<option value="{data.warehouses[1].id}" selected>' in answer.text
    assert db.session.query(StockReceipt).count() == 0
    unknown = client.post("/receive-stock/", data={**typed, "product": "NOPE", "quantity": "3"})
    assert unknown.status_code == 422 and 'id="error-product"' in unknown.text


def test_the_product_search_answers_a_few_matches_by_sku_or_name(clean_db) -> None:
    make_catalog(stock=0)
    client = login(clean_db, "specialist")
    found = client.get("/receive-stock/products?q=ku-2").json["result"]
    assert found == [{"sku": "SKU-2", "name": "Product 2", "unit": "ea"}]
    assert len(client.get("/receive-stock/products?q=product").json["result"]) == 3
    assert client.get("/receive-stock/products?q=%25").json["result"] == []


def test_receipts_list_newest_first_and_the_auditor_reads_but_cannot_receive(clean_db) -> None:
    data = make_catalog(stock=0)
    headers = api_headers(clean_db, "specialist")
    for quantity in (1, 2):
        body = {"product_id": data.products[0].id, "warehouse_id": data.warehouses[0].id}
        clean_db.test_client().post(URL, json={**body, "quantity": quantity}, headers=headers)
    client = login(clean_db, "auditor")
    page = client.get("/stockreceiptview/list/")
    assert page.status_code == 200
    assert page.text.index("GR-000002") < page.text.index("GR-000001")
    assert "Receive stock" not in page.text  # no menu entry for a read-only role
    assert client.get("/receive-stock/").status_code in (302, 403)
    specialist = login(clean_db, "specialist").get("/stockreceiptview/list/")
    assert "Receive stock" in specialist.text


# -- CLI -------------------------------------------------------------------------------------


def test_the_cli_receives_and_prints_the_receipt_and_what_it_fills(clean_db) -> None:
    data = make_catalog(stock=0)
    order = backordered_order(data, "PO-CLI")
    runner = clean_db.test_cli_runner()
    args = ["stock", "receive", "--sku", "SKU-1", "--warehouse", "W1", "--quantity", "10"]
    done = runner.invoke(args=[*args, "--reference", "PO-9"])
    assert done.exit_code == 0, done.output
    assert "GR-000001" in done.output and f"{order.number}/1" in done.output
    receipt = db.session.query(StockReceipt).one()
    assert (receipt.received_by, receipt.reference) == ("system:cli", "PO-9")
    refused = runner.invoke(args=[*args, "--user", "auditor"])
    assert refused.exit_code == 1 and "auditor may not receive stock" in refused.output
    unknown = runner.invoke(args=["stock", "receive", "--sku", "NOPE", "--warehouse", "W1"])
    assert unknown.exit_code == 2  # --quantity missing: click's usage error
    bad = runner.invoke(args=[*args[:-1], "0"])
    assert bad.exit_code == 2 and "quantity" in bad.output.lower()
    as_user = runner.invoke(args=[*args, "--user", "specialist"])
    assert as_user.exit_code == 0, as_user.output
    db.session.expire_all()
    assert db.session.query(StockReceipt).filter_by(received_by="specialist").count() == 1
