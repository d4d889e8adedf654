"""What people see in the portal, in a real browser, against the real server (CSRF on).

Each flow signs in through the login form and asserts on the rendered pages: flashes, table
cells, menus and the access-denied answer. Setup (which orders are drafts) is read from the
server's database; every check is made in the browser.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import E2E_PASSWORD, add_filter, sign_in

pytestmark = pytest.mark.e2e

ORDERS_LIST = "/salesorderview/list/"
LIST_ROWS = "table.table-bordered.table-hover > tbody > tr"  # a list view's records
# Columns of the sales orders list: buttons, number, customer, PO, dates, status, total.
PO_COLUMN = 4
STATUS_COLUMN = 7
SEEN_AS = {"specialist": "Specialist Demo", "auditor": "Auditor Demo"}


def flash(page: Page, text: str | re.Pattern[str]):
    return page.locator(".alert").filter(has_text=text)


def show_value(page: Page, label: str):
    """The value cell next to ``label`` on a record's show page."""
    return page.locator("tr", has=page.locator("th", has_text=re.compile(f"^{label}$")))


def field_on_show_page(page: Page, label: str) -> str:
    row = show_value(page, label)
    expect(row).to_have_count(1)
    return row.locator("td").inner_text().strip()


def navbar_menus(page: Page) -> list[str]:
    """Labels of the top-level menus in the navbar (left side: the app's categories)."""
    items = page.locator(".navbar-nav:not(.navbar-right) > li")
    return [text.strip() for text in items.all_inner_texts()]


def visit(page: Page, url: str) -> None:
    """Go to ``url``; the page must answer 200 (a 500 or 404 fails here, naming the URL)."""
    response = page.goto(url)
    assert response is not None, url
    assert response.status == 200, f"GET {url} answered {response.status}, not 200"


def order_row(page: Page, number: str):
    """The row of order ``number`` on the sales orders list (the demo's 40 fit one page)."""
    visit(page, ORDERS_LIST)
    return page.locator(LIST_ROWS).filter(
        has=page.locator("td", has_text=re.compile(f"^{re.escape(number)}$"))
    )


def open_edit_form(page: Page, order_id: int) -> None:
    visit(page, f"/salesorderview/edit/{order_id}")
    expect(page.locator("form#model_form")).to_be_visible()


def save_form(page: Page) -> None:
    page.locator("form#model_form").get_by_role("button", name="Save").click()
    page.wait_for_load_state()


def test_login_flow(new_page) -> None:
    page = new_page()
    visit(page, ORDERS_LIST)
    page.wait_for_url(re.compile(r"/login/"))
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    expect(page.get_by_text("Sales orders")).to_have_count(0)

    sign_in(page, "specialist", "not-the-password")
    page.wait_for_load_state()
    expect(flash(page, "Invalid login. Please try again.")).to_be_visible()
    assert "/login/" in page.url
    expect(page.locator(".navbar")).not_to_contain_text(SEEN_AS["specialist"])

    sign_in(page, "specialist", E2E_PASSWORD)
    page.wait_for_url(re.compile(r"/salesorderview/list/$"))
    expect(page.locator(".panel-title", has_text="Sales orders")).to_be_visible()
    expect(page.locator(".navbar-right")).to_contain_text(SEEN_AS["specialist"])
    expect(page.locator(LIST_ROWS).first).to_be_visible()


def test_specialist_filters_opens_and_edits_an_order(page_as, draft_orders) -> None:
    page = page_as("specialist")
    visit(page, ORDERS_LIST)

    # Search → Add Filter → Status, equal to "draft".
    add_filter(page, "status")
    page.locator("#filter_form select[name^='_flt_'][name$='_status']").select_option(label="Draft")
    page.locator("#filter_form").get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"_flt_\d+_status=draft"))
    rows = page.locator(LIST_ROWS)
    expect(rows.first).to_be_visible()
    statuses = rows.locator(f"td:nth-child({STATUS_COLUMN})").all_inner_texts()
    assert statuses and {status.strip() for status in statuses} == {"Draft"}, statuses

    # Open the first draft order.
    first = rows.first
    number = first.locator("td:nth-child(2)").inner_text().strip()
    old_po = first.locator(f"td:nth-child({PO_COLUMN})").inner_text().strip()
    with page.expect_response(re.compile(r"/salesorderview/show/\d+$")) as shown:
        first.get_by_role("link", name="Show").click()
    assert shown.value.status == 200, f"{shown.value.url} answered {shown.value.status}"
    page.wait_for_url(re.compile(r"/salesorderview/show/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    assert field_on_show_page(page, "Number") == number
    assert field_on_show_page(page, "Customer PO") == old_po

    # Back on the list, edit that order's customer PO through the form (real CSRF token).
    page.go_back()
    page.wait_for_url(re.compile(r"_flt_\d+_status=draft"))
    rows.filter(has_text=number).get_by_role("link", name="Edit").click()
    page.wait_for_url(re.compile(rf"/salesorderview/edit/{order_id}$"))
    assert page.locator("form#model_form input[name=csrf_token]").get_attribute("value")
    new_po = f"E2E-{secrets.token_hex(4).upper()}"
    page.get_by_label("Customer PO").fill(new_po)
    save_form(page)
    expect(flash(page, "Changed Row")).to_be_visible()
    visit(page, f"/salesorderview/show/{order_id}")
    assert field_on_show_page(page, "Customer PO") == new_po

    # The order's own history shows the edit, by whom, from where.
    page.get_by_role("link", name="History").click()
    page.wait_for_url(re.compile(rf"/salesorderview/history/{order_id}$"))
    edit = page.locator("#record-history tbody tr").filter(has_text=new_po)
    expect(edit).to_have_count(1)
    cells = [cell.strip() for cell in edit.locator("td").all_inner_texts()]
    assert cells[2:5] == ["specialist", "web", "update"], cells
    assert re.search(rf"customer_po:\s*{re.escape(old_po)}\s*→\s*{new_po}", cells[5]), cells[5]


def test_concurrent_edits_do_not_overwrite(page_as, draft_orders) -> None:
    order_id, number = draft_orders[0]
    first, second = page_as("specialist"), page_as("specialist")
    open_edit_form(first, order_id)
    open_edit_form(second, order_id)

    first_po = f"FIRST-{secrets.token_hex(3).upper()}"
    first.get_by_label("Customer PO").fill(first_po)
    save_form(first)
    expect(flash(first, "Changed Row")).to_be_visible()

    second_po = f"SECOND-{secrets.token_hex(3).upper()}"
    second.get_by_label("Customer PO").fill(second_po)
    save_form(second)
    refused = flash(second, "was changed by someone else")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text(number)
    expect(flash(second, "Changed Row")).to_have_count(0)

    # Both people now see the first one's value, in the list and in a fresh edit form.
    for page in (first, second):
        expect(order_row(page, number).locator(f"td:nth-child({PO_COLUMN})")).to_have_text(first_po)
        open_edit_form(page, order_id)
        expect(page.get_by_label("Customer PO")).to_have_value(first_po)


def test_auditor_reads_and_verifies_the_audit_trail(page_as) -> None:
    page = page_as("auditor")
    visit(page, "/auditeventview/list/")
    expect(page.locator(".panel-title", has_text="Audit trail")).to_be_visible()
    expect(page.locator(LIST_ROWS).first).to_be_visible()

    visit(page, "/auditeventview/verify")
    page.wait_for_url(re.compile(r"/auditeventview/list/"))
    expect(flash(page, re.compile(r"Audit chain intact: \d+ events verified"))).to_be_visible()


def test_audit_trail_list_offers_verify(page_as) -> None:
    page = page_as("auditor")
    visit(page, "/auditeventview/list/")
    page.get_by_role("link", name=re.compile("verify", re.IGNORECASE)).click(timeout=2_000)
    page.wait_for_url(re.compile(r"/auditeventview/list/"))
    expect(flash(page, "Audit chain intact")).to_be_visible()


def test_auditor_cannot_change_orders(page_as, draft_orders) -> None:
    order_id, number = draft_orders[-1]
    page = page_as("auditor")
    row = order_row(page, number)
    expect(row).to_be_visible()
    expect(page.locator("a[href*='/salesorderview/add']")).to_have_count(0)
    expect(page.locator("a[href*='/salesorderview/edit/']")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(row.get_by_role("link", name="Show")).to_be_visible()

    # FAB 5 answers a signed-in user who lacks the permission with 403 Forbidden.
    response = page.goto(f"/salesorderview/edit/{order_id}")
    assert response is not None and response.status == 403, response and response.status
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    expect(page.locator("form#model_form")).to_have_count(0)


@pytest.mark.parametrize("url", ["/users/list/", "/auditeventview/list/", "/queues/"])
def test_specialist_cannot_reach_admin_or_audit_pages(page_as, url: str) -> None:
    page = page_as("specialist")
    response = page.goto(url)
    assert response is not None and response.status == 403, (url, response and response.status)
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    expect(page.locator(LIST_ROWS)).to_have_count(0)

    visit(page, ORDERS_LIST)
    menus = navbar_menus(page)
    assert not {"Admin", "Audit", "Security"} & set(menus), menus


def test_menus_follow_the_roles(page_as) -> None:
    specialist = page_as("specialist")
    visit(specialist, ORDERS_LIST)
    menus = navbar_menus(specialist)
    assert {"Orders", "Inventory", "Customers"} <= set(menus), menus
    assert not {"Audit", "Admin", "Security"} & set(menus), menus

    auditor = page_as("auditor")
    visit(auditor, ORDERS_LIST)
    menus = navbar_menus(auditor)
    assert {"Orders", "Audit"} <= set(menus), menus
    assert not {"Admin", "Security"} & set(menus), menus


def test_unknown_incoterm_is_refused(page_as, draft_orders) -> None:
    order_id, number = draft_orders[1]
    page = page_as("specialist")
    open_edit_form(page, order_id)
    incoterm = page.get_by_label("Incoterm").input_value()
    version = page.locator("form#model_form input[name=version]").input_value()
    assert incoterm and incoterm != "ZZZ"

    page.get_by_label("Incoterm").fill("ZZZ")
    save_form(page)
    refused = flash(page, "incoterm")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("must be one of EXW")
    expect(flash(page, "Changed Row")).to_have_count(0)

    # The order is as it was: a fresh form shows the old incoterm at the same version.
    open_edit_form(page, order_id)
    expect(page.get_by_label("Incoterm")).to_have_value(incoterm)
    expect(page.locator("form#model_form input[name=version]")).to_have_value(version)
    expect(order_row(page, number)).to_be_visible()
