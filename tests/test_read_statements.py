"""The order reads load what they show (issue 18): the REST list carries the customer's name
and the stored total without reading any line; REST show and the HTML order page read the
record and what the page displays with a fixed, small number of statements, however many
lines and orders there are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import event

from portal.crud import ShownInterface
from portal.extensions import db
from portal.models import SalesOrder, utcnow
from portal.services import lifecycle, orders
from tests.conftest import api_headers, login
from tests.factories import SETUP, make_catalog

# what signing in and the permission checks cost (user, roles, permissions, their stamp)
AUTH_TABLES = ("ab_", "user_auth_state", "permission_stamp")


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run inside the block."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def _data_statements(seen: list[str]) -> list[str]:
    """The statements that read the page's records (not the sign-in's)."""
    return [s for s in seen if not any(f"FROM {t}" in s for t in AUTH_TABLES)]


def _reads(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if f"FROM {table} " in s or f"JOIN {table} " in s]


@pytest.fixture
def shop(clean_db: Flask) -> dict[str, int]:
    """Two orders of three lines and one of twelve, one of them confirmed."""
    data = make_catalog()
    made = []
    for count in (1, 1, 4):
        made.append(
            orders.orders.create_with_lines(
                {
                    "customer_id": data.customer.id,
                    "requested_date": utcnow().date() + timedelta(days=14),
                    "ship_to_id": data.customer.addresses[0].id,
                },
                [{"product_id": p.id, "quantity": 2} for p in data.products * count],
                SETUP,
            )
        )
    lifecycle.confirm(made[0], SETUP)
    ids = {"small": made[0].id, "other": made[1].id, "big": made[2].id}
    db.session.remove()
    return ids


def _get(client, url: str, **kwargs) -> tuple[object, list[str]]:
    client.get(url, **kwargs)  # warm up: the first request of a client loads more
    db.session.remove()
    with statements() as seen:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code)
    return response, seen


def test_the_rest_list_reads_no_line_and_carries_name_and_total(shop, clean_db) -> None:
    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    response, seen = _get(client, "/api/v1/sales_order/", headers=headers)
    assert _reads(seen, "order_line") == [], "the list must not load the orders' lines"
    data = _data_statements(seen)
    assert len(data) <= 2, data  # the count and the page (customer joined in)
    rows = {row["id"]: row for row in response.json["result"]}
    assert rows[shop["small"]]["customer"] == {"name": "Acme Ltd"}
    # 2 × 9.50 + 2 × 19.00 + 2 × 28.50, stored
    assert Decimal(str(rows[shop["small"]]["total"])) == Decimal("114.00")
    assert Decimal(str(rows[shop["big"]]["total"])) == Decimal("456.00")
    roles = [s for s in seen if "FROM ab_role WHERE ab_role.name" in s]
    assert len(roles) <= 1, "the Public role's permissions are loaded more than once"


def test_the_rest_list_sorts_by_total(shop, clean_db) -> None:
    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    query = "(order_column:total,order_direction:desc)"
    response = client.get(f"/api/v1/sales_order/?q={query}", headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["ids"][0] == shop["big"]


def test_rest_show_is_one_statement_with_name_and_total(shop, clean_db) -> None:
    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    response, seen = _get(client, f"/api/v1/sales_order/{shop['big']}", headers=headers)
    assert _reads(seen, "order_line") == []
    # a JWT client's show: the sign-in's checks (user, auth version, stamp) and the order
    assert len(seen) == 1, seen
    assert "FROM ab_user" in seen[0] and "JOIN sales_order " in seen[0]
    result = response.json["result"]
    assert result["customer"] == {"name": "Acme Ltd"}
    assert Decimal(str(result["total"])) == Decimal("456.00")


def test_rest_show_finds_each_order_by_its_own_id(shop, clean_db) -> None:
    """The show query is built once per column set, its id a parameter: each order is its
    own, and an id that names no order is a 404."""
    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    numbers = set()
    for key in ("small", "big", "other", "small"):
        response = client.get(f"/api/v1/sales_order/{shop[key]}", headers=headers)
        assert response.json["result"]["id"] == shop[key]
        numbers.add(response.json["result"]["number"])
    assert len(numbers) == 3
    missing = client.get(f"/api/v1/sales_order/{max(shop.values()) + 1}", headers=headers)
    assert missing.status_code == 404


def test_the_labels_are_those_of_the_answers_own_columns(shop, clean_db) -> None:
    """The labels of a list and of a record (kept once translated) each name that answer's
    columns, whichever was asked first."""
    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    for _ in range(2):
        listed = client.get("/api/v1/sales_order/", headers=headers).json
        shown = client.get(f"/api/v1/sales_order/{shop['big']}", headers=headers).json
        assert set(listed["label_columns"]) == set(listed["list_columns"])
        assert set(shown["label_columns"]) == set(shown["show_columns"])
        assert shown["label_columns"]["customer.name"] == "Customer Name"
        assert set(shown["label_columns"]) > set(listed["label_columns"])


def test_a_record_lookup_keeps_its_base_filters(shop, clean_db) -> None:
    """A lookup with filters (a view's ``base_filters``) is FAB's, filtered; the one without
    finds the record by id whatever was looked up before."""
    with clean_db.test_request_context():
        model = ShownInterface(SalesOrder, db.session)
        assert model.get(shop["small"]).id == shop["small"]
        assert model.get(shop["big"]).id == shop["big"]
        held = model.get_filters()
        held.add_filter("status", model.FilterEqual, "on_hold")
        assert model.get(shop["small"], held) is None  # confirmed, not on hold
        assert model.get(str(shop["small"])).id == shop["small"]  # a page's id is text


def test_the_order_page_reads_what_it_shows_once(shop, clean_db) -> None:
    client = login(clean_db, "specialist")
    _, small = _get(client, f"/salesorderview/show/{shop['small']}")
    big_response, big = _get(client, f"/salesorderview/show/{shop['big']}")
    # the order (with its customer and terms), its ship-to, its lines with their products,
    # its price requests, its checks, its related records
    assert len(_data_statements(big)) == len(_data_statements(small)) <= 6, big
    assert len(_reads(big, "sales_order")) == 1, "the order is read once"
    assert len(_reads(big, "order_line")) == 1, "the lines are read once"
    page = big_response.get_data(as_text=True)
    assert page.count('class="order-line"') == 12
    assert "USD 456.00" in page


def test_the_html_order_list_reads_no_line_and_sorts_by_total(shop, clean_db) -> None:
    client = login(clean_db, "specialist")
    view = "SalesOrderView"
    response, seen = _get(client, f"/salesorderview/list/?_oc_{view}=total_text&_od_{view}=desc")
    assert _reads(seen, "order_line") == []
    assert len(_data_statements(seen)) <= 2, _data_statements(seen)  # count, page + customer
    page = response.get_data(as_text=True)
    assert page.index("USD 456.00") < page.index("USD 114.00")
