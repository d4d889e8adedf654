"""The pickers' lookups (``/api/v1/lookup/<kind>``) and the picker script served with the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.services import catalog, invoices
from tests.conftest import api_headers, login
from tests.factories import SETUP, make_catalog, shipped_order


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    """The SQL statements run inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _customers(count: int, prefix: str = "K") -> None:
    for n in range(count):
        catalog.customers.create(
            {"code": f"{prefix}{n:03d}", "name": f"Kestrel Trading {n}", "credit_limit": 0}, SETUP
        )


def _get(app, path: str, user: str = "specialist"):
    return app.test_client().get(path, headers=api_headers(app, user))


def test_customers_match_code_prefix_or_name_and_stop_at_the_limit(clean_db) -> None:
    data = make_catalog(stock=0)
    _customers(30)
    by_code = _get(clean_db, "/api/v1/lookup/customer?q=k00&limit=5")
    assert by_code.status_code == 200
    assert [row["code"] for row in by_code.json["result"]] == [f"K00{n}" for n in range(5)]
    assert by_code.json["more"] is True
    by_name = _get(clean_db, "/api/v1/lookup/customer?q=acme").json
    assert by_name == {
        "result": [
            {
                "id": data.customer.id,
                "label": "C1 Acme Ltd",
                "code": "C1",
                "name": "Acme Ltd",
                "currency": "USD",
                "active": True,
                "credit_hold": False,
            }
        ],
        "more": False,
    }
    # a name's middle matches too; % and _ are text, not wildcards
    assert len(_get(clean_db, "/api/v1/lookup/customer?q=trading 2&limit=50").json["result"]) == 11
    assert _get(clean_db, "/api/v1/lookup/customer?q=%25").json["result"] == []


def test_products_by_sku_or_name_leave_inactive_ones_out(clean_db) -> None:
    data = make_catalog(stock=0)
    retired = data.products[2]
    catalog.products.update(retired, {"active": False}, SETUP, retired.version)
    rows = _get(clean_db, "/api/v1/lookup/product?q=sku-").json["result"]
    assert [row["sku"] for row in rows] == ["SKU-1", "SKU-2"]
    assert rows[1] | {"id": 0} == {
        "id": 0,
        "label": "SKU-2 Product 2",
        "sku": "SKU-2",
        "name": "Product 2",
        "unit": "ea",
        "pack_size": 1,
        "list_price": "19.0000",
        "active": True,
    }
    assert [r["sku"] for r in _get(clean_db, "/api/v1/lookup/product?q=duct 1").json["result"]] == [
        "SKU-1"
    ]


def test_ship_to_lists_only_the_chosen_customers_addresses(clean_db) -> None:
    data = make_catalog(stock=0)
    other = catalog.customers.create({"code": "C2", "name": "Other plc", "credit_limit": 0}, SETUP)
    catalog.customer_addresses.create(
        {
            "customer_id": other.id,
            "line1": "9 Far Road",
            "city": "York",
            "postal_code": "Y1",
            "country": "GB",
        },
        SETUP,
    )
    mine = _get(clean_db, f"/api/v1/lookup/ship_to?customer_id={data.customer.id}").json
    assert [row["id"] for row in mine["result"]] == [data.customer.addresses[0].id]
    assert mine["result"][0]["label"] == "Main: 1 Dock Street, Leeds LS1 1AA GB"
    assert mine["result"][0]["default"] is True
    theirs = _get(clean_db, f"/api/v1/lookup/ship_to?customer_id={other.id}&q=york").json
    assert [row["label"] for row in theirs["result"]] == ["Main: 9 Far Road, York Y1 GB"]


def test_invoices_by_number_or_customer_show_the_balance_with_currency(clean_db) -> None:
    data = make_catalog(stock=300)
    _, shipment = shipped_order(data, 200)
    invoice = invoices.invoice_shipment(shipment, SETUP)
    rows = _get(clean_db, f"/api/v1/lookup/invoice?q={invoice.number}", "auditor").json["result"]
    assert [row["id"] for row in rows] == [invoice.id]
    assert rows[0]["label"] == f"{invoice.number} · C1 Acme Ltd · balance USD 1,900.00"
    assert invoice.total == Decimal("1900.00")
    assert [r["id"] for r in _get(clean_db, "/api/v1/lookup/invoice?q=acme").json["result"]] == [
        invoice.id
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/lookup/customer?limit=0", "limit: must be a whole number from 1 to 50"),
        ("/api/v1/lookup/customer?limit=51", "limit: must be a whole number from 1 to 50"),
        ("/api/v1/lookup/product?limit=ten", "limit: must be a whole number"),
        ("/api/v1/lookup/ship_to", "customer_id: is required"),
        ("/api/v1/lookup/ship_to?customer_id=-1", "customer_id: must be a whole number"),
        ("/api/v1/lookup/customer?q=" + "x" * 101, "q: is longer than 100 characters"),
    ],
)
def test_bad_arguments_are_400_naming_the_argument(clean_db, path: str, message: str) -> None:
    response = _get(clean_db, path)
    assert response.status_code == 400
    assert message in response.json["message"]


def test_lookups_need_a_sign_in_and_answer_a_browser_session(clean_db) -> None:
    make_catalog(stock=0)
    assert clean_db.test_client().get("/api/v1/lookup/customer?q=c").status_code == 401
    browser = login(clean_db, "auditor").get("/api/v1/lookup/customer?q=c")
    assert browser.status_code == 200
    assert browser.json["result"][0]["code"] == "C1"


def test_a_lookup_is_one_query_whatever_the_table_size(clean_db) -> None:
    make_catalog(stock=0)
    headers = api_headers(clean_db, "specialist")
    client = clean_db.test_client()
    client.get("/api/v1/lookup/customer?q=k", headers=headers)  # warm up the sign-in caches
    sizes = []
    for batch in (3, 60):
        _customers(batch, prefix=f"K{batch}-")
        db.session.remove()
        with counted_queries() as statements:
            response = client.get("/api/v1/lookup/customer?q=k&limit=50", headers=headers)
        assert response.status_code == 200
        lookups = [s for s in statements if "FROM customer" in s]
        assert len(lookups) == 1 and "LIMIT" in lookups[0].upper()
        sizes.append(len(statements))
    assert sizes[0] == sizes[1]


def test_the_picker_script_is_served_with_the_app(clean_db) -> None:
    response = clean_db.test_client().get("/static/orderbridge/picker.js")
    assert response.status_code == 200
    assert "javascript" in response.content_type
    assert b"OrderbridgePicker" in response.data


def test_orders_match_their_number_its_digits_or_the_teams_id(clean_db) -> None:
    from tests.test_order_entry_api import draft

    data = make_catalog(stock=0)
    made = [draft(data) for _ in range(12)]
    numbers = [order.number for order in made]
    rows = _get(clean_db, "/api/v1/lookup/order?q=so-00001").json["result"]
    assert [row["number"] for row in rows] == sorted(numbers[9:], reverse=True)
    assert rows[0]["label"] == f"{numbers[-1]} · C1 Acme Ltd"
    assert [r["number"] for r in _get(clean_db, "/api/v1/lookup/order?q=7").json["result"]] == [
        numbers[6]
    ]  # the digits alone: SO-000007
    everything = _get(clean_db, "/api/v1/lookup/order?limit=5").json
    assert len(everything["result"]) == 5 and everything["more"] is True
    assert _get(clean_db, "/api/v1/lookup/order?q=SO-0%25").json["result"] == []


def test_warehouses_and_trackers_are_found_by_code_or_name(clean_db) -> None:
    from portal.services import trackers

    make_catalog(stock=0)
    rows = _get(clean_db, "/api/v1/lookup/warehouse?q=over").json["result"]
    assert [(row["code"], row["label"]) for row in rows] == [("W2", "W2 Overflow")]
    assert [r["code"] for r in _get(clean_db, "/api/v1/lookup/warehouse").json["result"]] == [
        "W1",
        "W2",
    ]  # in priority order
    trackers.trackers.create(
        {
            "name": "Open orders",
            "kind": "orders",
            "backend": "xlsx",
            "location": "o.xlsx",
            "tab": "A",
        },
        SETUP,
    )
    found = _get(clean_db, "/api/v1/lookup/tracker?q=open").json["result"]
    assert [(row["label"], row["kind"]) for row in found] == [("Open orders", "orders")]


def test_a_filters_product_lookup_finds_retired_products_too(clean_db) -> None:
    data = make_catalog(stock=0)
    retired = data.products[2]
    catalog.products.update(retired, {"active": False}, SETUP, retired.version)
    assert _get(clean_db, "/api/v1/lookup/product?q=sku-3").json["result"] == []
    found = _get(clean_db, "/api/v1/lookup/product?q=sku-3&include_inactive=1").json["result"]
    assert [row["sku"] for row in found] == ["SKU-3"]
    bad = _get(clean_db, "/api/v1/lookup/product?include_inactive=maybe")
    assert bad.status_code == 400 and "include_inactive: must be 1 or 0" in bad.json["message"]


@pytest.mark.postgres  # the pattern indexes are PostgreSQL's
@pytest.mark.parametrize(
    ("kind", "text", "table"),
    [
        ("order", "SO-0001", "sales_order"),
        ("order", "12", "sales_order"),
        ("invoice", "INV-00", "invoice"),
    ],
)
def test_a_number_lookup_is_an_index_search_on_postgresql(clean_db, kind, text, table) -> None:
    """The statement the lookup runs, planned with sequential scans priced out: an index
    finds the numbers (migration 0023 for orders, 0024 for invoices), never a scan of the table."""
    from sqlalchemy import text as sql

    from portal.services import lookups

    with counted_queries() as statements:
        lookups.lookup(kind, text, 20)
    (statement,) = [s for s in statements if f"FROM {table}" in s]
    assert re.search(r"LIKE '[A-Z]+-[0-9]*%%?'", statement), statement  # a constant prefix
    db.session.execute(sql("SET LOCAL enable_seqscan = off"))
    query, _ = lookups.KINDS[kind](text, {})
    compiled = query.limit(21).compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = "\n".join(db.session.execute(sql(f"EXPLAIN {compiled}")).scalars())
    assert f"Seq Scan on {table}" not in plan, plan
    assert "Index" in plan, plan
    db.session.rollback()
