"""Paging of the lists (issue 18): counts that do not scan, and keyset pages.

A list's count is exact up to ``LIST_EXACT_COUNT_LIMIT`` and bounded by it; above it, on
PostgreSQL, it is the planner's estimate, shown as "about N" and flagged in REST. Every sort a
list offers pages with next/previous cursors without a gap or a repeat, a page stays the
same when orders are added in front of it, and a cursor that was altered or belongs to
another list is a 400. Every HTML list and REST list of the portal pages this way, and a
list page costs at most 5 statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import prison
import pytest
from flask import Flask
from flask_appbuilder import ModelView
from flask_appbuilder.api import ModelRestApi
from sqlalchemy import text

from portal.extensions import appbuilder, db
from portal.models import SalesOrder
from portal.paging import DEFAULT_ESTIMATE_SECONDS, PagedInterface, kept_estimates
from portal.services import orders
from portal.views.paged import PagedListWidget
from tests.conftest import actor, api_headers, login
from tests.factories import Catalog, make_catalog
from tests.test_home import counted

DAY = date(2026, 11, 2)
API = "/api/v1/sales_order/"


def make_orders(data: Catalog, count: int, tag: str = "A") -> None:
    """``count`` draft and quote orders over a week of order dates (many ties on the date)."""
    entries = [
        (
            {
                "customer_id": data.customer.id,
                "customer_po": f"{tag}-{index}",
                "order_date": DAY - timedelta(days=index % 7),
                "requested_date": DAY + timedelta(days=30 + index % 5) if index % 3 else None,
                "ship_to_id": data.customer.addresses[0].id,
                "status": "quote" if index % 2 else "draft",
            },
            [{"product_id": data.products[0].id, "quantity": 1}],
        )
        for index in range(count)
    ]
    orders.orders.create_many(entries, actor("specialist"))


@contextmanager
def exact_count_limit(app: Flask, limit: int) -> Iterator[None]:
    saved = app.config["LIST_EXACT_COUNT_LIMIT"]
    app.config["LIST_EXACT_COUNT_LIMIT"] = limit
    try:
        yield
    finally:
        app.config["LIST_EXACT_COUNT_LIMIT"] = saved


def rest_list(client, headers, cursor: str | None = None, **args: Any) -> Any:
    url = f"{API}?q={prison.dumps(args)}" + (f"&cursor={cursor}" if cursor else "")
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def expected_ids(column: str, direction: str) -> list[int]:
    """The orders in the list's order: the column, status then date, ties by id."""
    rows = db.session.query(SalesOrder).all()

    def key(order: SalesOrder) -> tuple:
        ties = (order.order_date,) if column == "status" else ()
        value = getattr(order, column)
        return ((value is None) != (direction == "asc"), value or 0, *ties, order.id)

    if column == "requested_date":  # nullable: FAB's order, NULLs where the database puts them
        return []
    return [order.id for order in sorted(rows, key=key, reverse=direction == "desc")]


def test_count_is_exact_to_the_limit_then_the_estimate(clean_db) -> None:
    data = make_catalog(stock=10)
    make_orders(data, 30)
    client, headers = clean_db.test_client(), api_headers(clean_db, "specialist")
    browser = login(clean_db, "specialist")
    with exact_count_limit(clean_db, 30):
        with counted() as statements:
            exact = rest_list(client, headers, page_size=5)
        assert (exact["count"], exact["count_is_estimate"]) == (30, False)
        counts = [each for each in statements if "count(" in each]
        assert len(counts) == 1 and "LIMIT" in counts[0]  # bounded: never more than n + 1
        page = browser.get("/salesorderview/list/").text
        assert re.search(r'class="record-count"[^>]*>\s*30\s*<', page)
        make_orders(data, 1, tag="B")
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE sales_order"))
            db.session.commit()
        over = rest_list(client, headers, page_size=5)
        page = browser.get("/salesorderview/list/").text
    if db.engine.dialect.name == "postgresql":
        assert over["count_is_estimate"] is True and over["count"] >= 31
        assert re.search(r'class="record-count"[^>]*>\s*about 3\d\s*<', page)
    else:  # SQLite has no estimate: the count stays exact
        assert (over["count"], over["count_is_estimate"]) == (31, False)
        assert re.search(r'class="record-count"[^>]*>\s*31\s*<', page)


@pytest.mark.postgres  # SQLite has no estimate: every count is exact (the test above)
def test_an_estimate_is_kept_a_while_an_exact_count_never(clean_db) -> None:
    """Above the limit the list's estimate is kept (``LIST_ESTIMATE_SECONDS``): the next
    page asks only for its rows. A list with other filter values is estimated or counted on
    its own; an exact count is made again on every page; 0 seconds keeps nothing."""
    data = make_catalog(stock=10)
    make_orders(data, 31)
    db.session.execute(text("ANALYZE sales_order"))
    db.session.commit()
    client, headers = clean_db.test_client(), api_headers(clean_db, "specialist")

    def counts(**args: Any) -> tuple[int, bool, int]:
        with counted() as statements:
            answer = rest_list(client, headers, page_size=5, **args)
        asked = [each for each in statements if "count(" in each or "EXPLAIN" in each]
        return answer["count"], answer["count_is_estimate"], len(asked)

    with exact_count_limit(clean_db, 30):
        first = counts()
        assert first[1:] == (True, 2)  # the bounded count, then the estimate
        assert counts() == (first[0], True, 0)  # kept: no count, no EXPLAIN
        mine = [{"col": "customer_po", "opr": "eq", "value": "A-3"}]
        assert counts(filters=mine) == (1, False, 1)  # other values: counted on its own
        make_orders(data, 4)  # A-0 … A-3: one more "A-3"
        assert counts(filters=mine) == (2, False, 1)  # an exact count is never kept
        clean_db.config["LIST_ESTIMATE_SECONDS"] = 0
        try:
            kept_estimates().clear()
            assert counts()[1:] == (True, 2)
            assert counts()[1:] == (True, 2)  # 0: nothing kept
        finally:
            clean_db.config["LIST_ESTIMATE_SECONDS"] = DEFAULT_ESTIMATE_SECONDS


def walk(client, headers, column: str, direction: str, size: int = 7) -> list[int]:
    """The list's ids, following ``next`` from the first page, checking ``previous`` back."""
    pages: list[list[int]] = []
    answer = rest_list(
        client, headers, order_column=column, order_direction=direction, page_size=size
    )
    assert answer["previous"] is None
    while True:
        pages.append(answer["ids"])
        if answer["next"] is None:
            break
        answer = rest_list(
            client, headers, answer["next"], order_column=column, order_direction=direction,
            page_size=size,
        )  # fmt: skip
    back = [answer["ids"]]
    while answer["previous"] is not None:
        answer = rest_list(
            client, headers, answer["previous"], order_column=column,
            order_direction=direction, page_size=size,
        )  # fmt: skip
        back.insert(0, answer["ids"])
    assert back == pages  # previous walks back over the very same pages
    return [pk for page in pages for pk in page]


def test_every_sort_offered_pages_with_cursors(clean_db) -> None:
    make_orders(make_catalog(stock=10), 40)
    client, headers = clean_db.test_client(), api_headers(clean_db, "specialist")
    offered = rest_list(client, headers)["order_columns"]
    assert {"number", "order_date", "status"} <= set(offered)
    everything = sorted(order.id for order in db.session.query(SalesOrder))
    for column in offered:
        for direction in ("asc", "desc"):
            ids = walk(client, headers, column, direction)
            assert sorted(ids) == everything, (column, direction)  # no gap, no repeat
            wanted = expected_ids(column, direction)
            assert not wanted or ids == wanted, (column, direction)
    assert walk(client, headers, "id", "asc") == everything  # the default sort's order


def test_keyset_page_is_stable_across_inserts(clean_db) -> None:
    data = make_catalog(stock=10)
    make_orders(data, 20)
    client, headers = clean_db.test_client(), api_headers(clean_db, "specialist")
    args = {"order_column": "id", "order_direction": "desc", "page_size": 5}
    first = rest_list(client, headers, **args)
    make_orders(data, 3, tag="new")  # in front of the first page
    second = rest_list(client, headers, first["next"], **args)
    newest_first = sorted((order.id for order in db.session.query(SalesOrder)), reverse=True)
    after = newest_first.index(first["ids"][-1])
    assert second["ids"] == newest_first[after + 1 : after + 6]


def test_asking_for_a_page_by_number_still_works(clean_db) -> None:
    make_orders(make_catalog(stock=10), 20)
    client, headers = clean_db.test_client(), api_headers(clean_db, "specialist")
    args = {"order_column": "order_date", "order_direction": "desc", "page_size": 5}
    third = rest_list(client, headers, page=2, **args)
    by_cursor = rest_list(
        client, headers, rest_list(client, headers, page=1, **args)["next"], **args
    )
    assert third["ids"] == by_cursor["ids"]
    assert (
        rest_list(client, headers, third["previous"], **args)["ids"]
        == rest_list(client, headers, page=1, **args)["ids"]
    )


def test_altered_or_foreign_cursors_are_refused(clean_db) -> None:
    make_orders(make_catalog(stock=10), 12)
    client, headers = clean_db.test_client(), api_headers(clean_db, "specialist")
    args = {"order_column": "number", "order_direction": "asc", "page_size": 5}
    cursor = rest_list(client, headers, **args)["next"]
    altered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    products = client.get(f"/api/v1/product/?q={prison.dumps({'page_size': 1})}", headers=headers)
    foreign = products.json["next"]
    assert foreign is not None
    for bad in (altered, "not-a-cursor", foreign):
        answer = client.get(f"{API}?q={prison.dumps(args)}&cursor={bad}", headers=headers)
        assert answer.status_code == 400, bad
        assert "cursor" in answer.json["message"]
    other_sort = {**args, "order_column": "order_date"}
    answer = client.get(f"{API}?q={prison.dumps(other_sort)}&cursor={cursor}", headers=headers)
    assert answer.status_code == 400 and "another sort" in answer.json["message"]
    browser = login(clean_db, "specialist")
    page = browser.get(f"/salesorderview/list/?cursor_SalesOrderView={altered}")
    assert page.status_code == 400 and "cursor" in page.text


def html_numbers(page: str) -> list[str]:
    return re.findall(r"<td>\s*(SO-\d+)\s*</td>", page)


def test_html_list_walks_next_and_previous(clean_db) -> None:
    make_orders(make_catalog(stock=10), 17)
    browser = login(clean_db, "specialist")
    url = "/salesorderview/list/?_oc_SalesOrderView=order_date&_od_SalesOrderView=desc"
    url += "&psize_SalesOrderView=5"
    seen, pages = [], 0
    while url:
        page = browser.get(url.replace("&amp;", "&")).text
        seen.extend(html_numbers(page))
        pages += 1
        found = re.search(r'rel="next" href="([^"]+)"', page)
        url = found.group(1) if found else ""
    assert pages == 4 and len(seen) == len(set(seen)) == 17
    previous = re.search(r'rel="prev" href="([^"]+)"', page).group(1)
    assert html_numbers(browser.get(previous.replace("&amp;", "&")).text) == seen[10:15]


def test_every_list_pages_through_the_paged_interface(app) -> None:
    """Every list of the portal's own views and resources (FAB's user and role pages are
    FAB's)."""
    lists = 0
    for view in appbuilder.baseviews:
        if not type(view).__module__.startswith("portal."):
            continue
        routes = view.include_route_methods or {"list", "get_list"}  # None: every route
        if isinstance(view, ModelView) and "list" in routes:
            assert isinstance(view.datamodel, PagedInterface), type(view).__name__
            assert issubclass(view.list_widget, PagedListWidget), type(view).__name__
            lists += 1
        elif isinstance(view, ModelRestApi) and "get_list" in routes:
            assert isinstance(view.datamodel, PagedInterface), type(view).__name__
            lists += 1
    assert lists > 20


@pytest.mark.parametrize("limit", [10_000, 20])  # exact, and (on PostgreSQL) the estimate
@pytest.mark.parametrize("url", ["/salesorderview/list/", API, "/customerview/list/"])
def test_a_list_page_costs_at_most_five_statements(clean_db, url: str, limit: int) -> None:
    make_orders(make_catalog(stock=10), 60)
    client = login(clean_db, "specialist")
    headers = api_headers(clean_db, "specialist") if url.startswith("/api") else {}
    assert client.get(url, headers=headers).status_code == 200  # the process's cache filled
    with exact_count_limit(clean_db, limit), counted() as statements:
        answer = client.get(url, headers=headers)
    assert answer.status_code == 200
    assert len(statements) <= 5, statements
