"""Keyset paging in a real browser (issue 18): the orders list, sorted by order date, walked
with Next and back with Previous, shows every order once, in order, the page numbers follow
the walk and still open a page asked for by number, and an altered cursor is refused."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ORDERS = (
    "/salesorderview/list/?_oc_SalesOrderView=order_date&_od_SalesOrderView=desc"
    "&psize_SalesOrderView=5"  # the demo has a few dozen orders
)
ROWS = "table.table-bordered.table-hover > tbody > tr"
NUMBER_COLUMN, DATE_COLUMN = 2, 5  # after the buttons column
PAGES = 4


def rows(page: Page) -> list[tuple[str, date]]:
    """(number, order date) of each row on the page."""
    found = []
    for row in page.locator(ROWS).all():
        cells = row.locator("td")
        number = cells.nth(NUMBER_COLUMN - 1).inner_text().strip()
        found.append((number, date.fromisoformat(cells.nth(DATE_COLUMN - 1).inner_text().strip())))
    return found


def follow(page: Page, link) -> None:
    """Click ``link`` and wait for the page it opens."""
    with page.expect_navigation():
        link.click()


def active_page(page: Page) -> str:
    return page.locator("ul.pagination li.active").first.inner_text().strip()


def test_next_and_previous_walk_the_orders_list(page_as, tmp_path) -> None:
    page = page_as("specialist")
    page.goto(ORDERS)
    count = page.locator(".record-count").inner_text()
    assert re.fullmatch(r"(about )?[\d,]+", count), count
    assert page.locator("a[rel=prev]").count() == 0  # the first page has none
    walked = [rows(page)]
    for _ in range(PAGES - 1):
        follow(page, page.locator("a[rel=next]"))
        assert "cursor_SalesOrderView=" in page.url
        walked.append(rows(page))
    assert active_page(page) == str(PAGES)
    page.screenshot(path=str(tmp_path / "paging.png"))
    numbers = [number for each in walked for number, _ in each]
    assert len(numbers) == len(set(numbers)) == PAGES * len(walked[0]), walked  # none twice
    dates = [day for each in walked for _, day in each]
    assert dates == sorted(dates, reverse=True)
    follow(page, page.locator("a[rel=prev]"))
    assert rows(page) == walked[-2] and active_page(page) == str(PAGES - 1)
    follow(page, page.locator("ul.pagination a", has_text=re.compile(r"^\s*2\s*$")))
    assert rows(page) == walked[1]  # a page asked for by number
    follow(page, page.locator("a[rel=next]"))
    assert rows(page) == walked[2]
    altered = re.sub(r"cursor_SalesOrderView=[^&]*", "cursor_SalesOrderView=x", page.url)
    response = page.goto(altered)
    assert response is not None and response.status == 400
    expect(page.get_by_text(re.compile("cursor"))).to_be_visible()
