"""The daily duties in a real browser, each walked by the role that owns it from the menu and
the pages' own links (no URL typed), checking what the page shows and what was stored:
shipment carrier details and delivery (never in the future), a return from request to close
(authorized by a Supervisor), a dispute a Supervisor resolves, a credit rejected with a
reason, each role's home page; and a button walker that clicks every action on the order,
shipment, return, credit memo and dispute pages as each role: none answers 403 or 500.

With ``ORDERBRIDGE_SCREENSHOTS=<dir>`` the tests save a PNG of each main page there (the
user guide's pictures: ``ORDERBRIDGE_SCREENSHOTS=docs/img``).
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import E2E_PASSWORD, TIMEOUT_MS, _post_json, add_filter

pytestmark = pytest.mark.e2e

LIST_ROWS = "table.table-bordered.table-hover > tbody > tr"
SHOTS = os.environ.get("ORDERBRIDGE_SCREENSHOTS")
NARROW = {"width": 390, "height": 844}


def snap(page: Page, name: str) -> None:
    """Save the page as ``<ORDERBRIDGE_SCREENSHOTS>/<name>.png`` when the switch is set."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def menu(page: Page, category: str, item: str) -> None:
    """Open ``category`` in the navbar and click ``item``."""
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text=category).click()
    page.locator(".navbar-nav .dropdown-menu a", has_text=re.compile(f"^\\s*{item}\\s*$")).click()
    page.wait_for_load_state()


def home(page: Page) -> None:
    page.locator(".navbar-brand a, a.navbar-brand").first.click()
    page.wait_for_load_state()


def flash(page: Page, words: str | re.Pattern[str]):
    return page.locator(".alert").filter(has_text=words)


def search_list(page: Page, column: str, value: str) -> None:
    """On the list page shown: Search → Add Filter → ``column`` = ``value``."""
    add_filter(page, column)
    field = page.locator(f"#filter_form :is(input, select)[name^='_flt_'][name$='_{column}']")
    if field.evaluate("element => element.tagName") == "SELECT":  # a status: chosen by label
        field.select_option(value)
    else:
        field.fill(value)
    page.locator("#filter_form").get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(rf"_flt_\d+_{column}="))


def show(row) -> None:
    row.get_by_role("link", name="Show").click()
    row.page.wait_for_load_state()


def query(database_url: str, sql: str, **params) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def record_id(page: Page) -> int:
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


# -- records of their own, made over the REST API as the demo's people would -----------------


class Api:
    """The portal's REST API as one of the demo users."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        login = {"username": username, "password": E2E_PASSWORD, "provider": "db"}
        self.token = _post_json(f"{base}/api/v1/security/login", {**login, "refresh": False})[
            "access_token"
        ]

    def post(self, path: str, body: dict | None = None) -> dict:
        return _post_json(f"{self.base}/api/v1/{path}", body or {}, self.token)


def _shipped_orders(server, count: int) -> list[dict]:
    """``count`` orders entered, confirmed, allocated and shipped (one unit of one product
    packed in ones, from the warehouse holding it): their order, line and shipment ids."""
    url = server.database_url
    [customer] = query(
        url,
        "SELECT c.id, min(a.id) FROM customer c JOIN customer_address a ON a.customer_id = c.id"
        " WHERE c.active AND NOT c.credit_hold GROUP BY c.id, c.credit_limit"
        " ORDER BY c.credit_limit DESC, c.id LIMIT 1",
    )
    [product] = query(
        url,
        "SELECT p.id FROM product p JOIN stock_level s ON s.product_id = p.id"
        " WHERE p.active AND p.pack_size = 1 GROUP BY p.id"
        " ORDER BY sum(s.on_hand - s.allocated) DESC, p.id LIMIT 1",
    )
    clerk = Api(server.base_url, "specialist")
    made = []
    for _ in range(count):
        order = clerk.post(
            "sales_order/",
            {
                "customer_id": customer[0],
                "customer_po": f"E2E-D-{secrets.token_hex(4).upper()}",
                "requested_date": (date.today() + timedelta(days=120)).isoformat(),
                "ship_to_id": customer[1],
                "lines": [{"product_id": product[0], "quantity": 2}],
            },
        )["id"]
        clerk.post(f"sales_order/{order}/confirm")
        clerk.post(f"sales_order/{order}/allocate")
        [(line, warehouse)] = query(
            url,
            "SELECT l.id, a.warehouse_id FROM order_line l JOIN allocation a"
            " ON a.order_line_id = l.id WHERE l.order_id = :id AND a.quantity > 0",
            id=order,
        )
        shipment = clerk.post(
            "shipment/",
            {
                "order_id": order,
                "warehouse_id": warehouse,
                "carrier": "DHL",
                "lines": [{"order_line_id": line, "quantity": 2}],
            },
        )["id"]
        made.append({"order": order, "line": line, "shipment": shipment, "warehouse": warehouse})
    return made


@pytest.fixture(scope="module")
def fresh(portal_server) -> dict[str, list[int]]:
    """Records for these tests alone: shipped orders (the delivery and return duties, and
    the walker's shipments), and for the walker a return, a credit request and a dispute per
    role, in states with actions to take."""
    shipped = _shipped_orders(portal_server, 6)
    clerk = Api(portal_server.base_url, "specialist")
    walker = shipped[2:]
    returns = [
        clerk.post(
            "return_authorization/",
            {
                "order_id": item["order"],
                "warehouse_id": item["warehouse"],
                "reason": "walker",
                "lines": [{"order_line_id": item["line"], "quantity": 1}],
            },
        )["id"]
        for item in walker
    ]
    invoices = [
        row[0]
        for row in query(
            portal_server.database_url,
            "SELECT id FROM invoice WHERE status = 'issued' ORDER BY id LIMIT 4",
        )
    ]
    memos = [
        clerk.post(
            "credit_memo/", {"invoice_id": invoice, "reason_code": "goodwill", "amount": "0.50"}
        )["id"]
        for invoice in invoices
    ]
    opened = [
        clerk.post(
            "dispute/", {"invoice_id": invoice, "dispute_type": "pricing", "amount": "0.50"}
        )["id"]
        for invoice in invoices
    ]
    return {
        "duty_shipments": [item["shipment"] for item in shipped[:2]],
        "order": [item["order"] for item in walker],
        "shipment": [item["shipment"] for item in walker],
        "return": returns,
        "credit memo": memos,
        "dispute": opened,
    }


# -- shipments --------------------------------------------------------------------------------


def test_a_specialist_updates_a_shipment_and_records_its_delivery(
    page_as, portal_server, fresh
) -> None:
    [(number,)] = query(
        portal_server.database_url,
        "SELECT number FROM shipment WHERE id = :id",
        id=fresh["duty_shipments"][0],
    )
    page = page_as("specialist")
    menu(page, "Orders", "Shipments")
    on_the_way = page.locator(LIST_ROWS).filter(has_text=number)
    expect(on_the_way).to_contain_text("Shipped")
    show(on_the_way)
    shipment_id = record_id(page)
    expect(page.locator("#shipment-lines tbody tr").first).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Version")
    snap(page, "shipment")

    tracking = f"E2E-{secrets.token_hex(3).upper()}"
    page.get_by_label("Tracking number").fill(tracking)
    page.locator("#action-update").click()
    page.wait_for_url(re.compile(rf"/shipmentview/show/{shipment_id}$"))
    expect(flash(page, "saved")).to_be_visible()
    expect(page.get_by_label("Tracking number")).to_have_value(tracking)

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    page.get_by_label("Delivered on").fill(tomorrow)
    page.locator("#action-deliver").click()
    expect(flash(page, f"{tomorrow} is in the future")).to_be_visible()
    expect(page.get_by_label("Delivered on")).to_have_value(tomorrow)  # the input is kept

    today = date.today().isoformat()
    page.get_by_label("Delivered on").fill(today)
    page.locator("#action-deliver").click()
    expect(flash(page, f"delivered on {today}")).to_be_visible()
    expect(page.locator("#action-deliver")).to_have_count(0)  # nothing left to deliver
    [(stored_tracking, delivered)] = query(
        portal_server.database_url,
        "SELECT tracking_number, delivered_date FROM shipment WHERE id = :id",
        id=shipment_id,
    )
    assert stored_tracking == tracking and str(delivered) == today


# -- returns ----------------------------------------------------------------------------------


def test_a_return_goes_from_request_to_close(page_as, portal_server, fresh) -> None:
    [(shipment,)] = query(
        portal_server.database_url,
        "SELECT number FROM shipment WHERE id = :id",
        id=fresh["duty_shipments"][1],
    )
    specialist = page_as("specialist")
    menu(specialist, "Orders", "Shipments")
    show(specialist.locator(LIST_ROWS).filter(has_text=shipment))
    specialist.locator("#shipment-request-return").click()
    expect(specialist.locator("#return-request-form tbody tr")).to_contain_text("2")
    snap(specialist, "return-request")
    qty = specialist.locator("#return-request-form input[name^=qty_]:enabled").first
    qty.fill("1")
    reason = f"e2e dented {secrets.token_hex(2)}"
    specialist.get_by_label("Reason").fill(reason)
    specialist.locator("#action-request").click()
    specialist.wait_for_url(re.compile(r"/returnview/show/\d+$"))
    rma_id = record_id(specialist)
    expect(flash(specialist, "requested")).to_be_visible()
    expect(specialist.locator("#action-authorize")).to_have_count(0)  # not the requester's
    [(number, status)] = query(
        portal_server.database_url,
        "SELECT number, status FROM return_authorization WHERE id = :id",
        id=rma_id,
    )
    assert status == "requested"

    supervisor = page_as("supervisor")
    waiting = supervisor.locator("#home-returns a", has_text=number)
    expect(waiting).to_be_visible()
    snap(supervisor, "home-supervisor")
    waiting.click()
    supervisor.locator("#action-authorize").click()
    expect(flash(supervisor, f"{number} authorized")).to_be_visible()

    menu(specialist, "Orders", "Returns")
    show(specialist.locator(LIST_ROWS).filter(has_text=number))
    specialist.locator("#return-receive-form select").first.select_option(label="Scrapped")
    snap(specialist, "return")
    specialist.locator("#action-receive").click()
    expect(flash(specialist, f"{number} received")).to_be_visible()
    specialist.locator("#action-close").click()
    expect(flash(specialist, f"{number} closed")).to_be_visible()
    expect(specialist.locator("#return-related .ob-status")).to_have_text("Closed")
    [(status, condition, received)] = query(
        portal_server.database_url,
        "SELECT r.status, l.condition, l.received_quantity FROM return_authorization r"
        " JOIN return_line l ON l.rma_id = r.id WHERE r.id = :id",
        id=rma_id,
    )
    assert (status, condition, received) == ("closed", "scrap", 1)


# -- disputes and credits ---------------------------------------------------------------------


def _an_open_invoice(page: Page) -> None:
    """Finance → Invoices, the issued ones, the first: its page."""
    menu(page, "Finance", "Invoices")
    search_list(page, "status", "issued")
    show(page.locator(LIST_ROWS).first)


def test_a_supervisor_resolves_the_dispute_a_specialist_opened(page_as, portal_server) -> None:
    specialist = page_as("specialist")
    _an_open_invoice(specialist)
    specialist.locator("#invoice-open-dispute").click()
    specialist.get_by_label("Type").select_option(label="Late delivery")
    specialist.get_by_label(re.compile("^Amount disputed")).fill("1.00")
    specialist.get_by_label("What the customer says").fill("arrived a week late")
    snap(specialist, "dispute-open")
    specialist.locator("#action-open-dispute").click()
    specialist.wait_for_url(re.compile(r"/disputeview/show/\d+$"))
    dispute_id = record_id(specialist)
    expect(flash(specialist, "opened")).to_be_visible()
    specialist.locator("#action-investigate").click()
    expect(flash(specialist, "under investigation")).to_be_visible()
    # Their own dispute: they may reject it, a Supervisor resolves it.
    expect(specialist.locator("#dispute-decide")).to_have_text(re.compile(r"^\s*Reject\s*$"))
    expect(specialist.locator("#dispute-related")).to_contain_text("a Supervisor resolves it")
    [(number,)] = query(
        portal_server.database_url, "SELECT number FROM dispute WHERE id = :id", id=dispute_id
    )

    supervisor = page_as("supervisor")
    menu(supervisor, "Finance", "Disputes")
    show(supervisor.locator(LIST_ROWS).filter(has_text=number))
    expect(supervisor.locator("body")).to_contain_text("Late delivery")
    snap(supervisor, "dispute")
    supervisor.locator("#dispute-decide").click()
    supervisor.get_by_label("Root cause").select_option(label="Carrier")
    supervisor.get_by_label(re.compile("^Corrective action")).fill("changed carrier")
    supervisor.get_by_role("button", name="Save").click()
    expect(flash(supervisor, f"{number} is resolved")).to_be_visible()
    [(status, root_cause, closed_by)] = query(
        portal_server.database_url,
        "SELECT status, root_cause, closed_by FROM dispute WHERE id = :id",
        id=dispute_id,
    )
    assert (status, root_cause, closed_by) == ("resolved", "carrier", "supervisor")


def test_a_supervisor_rejects_a_credit_with_a_reason(page_as, portal_server) -> None:
    specialist = page_as("specialist")
    _an_open_invoice(specialist)
    specialist.locator("#invoice-request-credit").click()
    expect(specialist.locator("#credit-available")).to_contain_text("USD ")
    specialist.get_by_label("Reason").select_option(label="Damaged goods")
    specialist.get_by_label(re.compile("^Amount")).fill("1.00")
    snap(specialist, "credit-request")
    specialist.locator("#action-request-credit").click()
    specialist.wait_for_url(re.compile(r"/creditmemoview/show/\d+$"))
    memo_id = record_id(specialist)
    [(number,)] = query(
        portal_server.database_url, "SELECT number FROM credit_memo WHERE id = :id", id=memo_id
    )

    supervisor = page_as("supervisor")
    home(supervisor)
    row = supervisor.locator("#home-approvals tr", has_text=number)
    expect(row).to_contain_text("USD 1.00")
    row.get_by_role("link", name=number).click()
    snap(supervisor, "credit-memo")
    reason = f"no photo of the damage {secrets.token_hex(2)}"
    supervisor.get_by_placeholder("Why reject it?").fill(reason)
    supervisor.locator("#action-reject").click()
    expect(flash(supervisor, f"{number} rejected")).to_be_visible()
    [(status, note, decided_by)] = query(
        portal_server.database_url,
        "SELECT status, decision_note, decided_by FROM credit_memo WHERE id = :id",
        id=memo_id,
    )
    assert (status, note, decided_by) == ("rejected", reason, "supervisor")
    menu(supervisor, "Finance", "Credit approvals")
    snap(supervisor, "credit-approvals")


# -- home pages and narrow screens -----------------------------------------------------------


def test_each_role_lands_on_its_work(page_as) -> None:
    expected = {
        "specialist": ("#home-attention", "#home-holds", "#home-sync-errors"),
        "supervisor": ("#home-approvals", "#home-conflicts"),
        "auditor": ("#home-verification", "#home-exports"),
        "admin": ("#home-jobs", "#home-failed-jobs"),
    }
    for role, sections in expected.items():
        page = page_as(role)
        for section in sections:
            expect(page.locator(section)).to_be_visible()
        others = {s for r, ss in expected.items() if r != role for s in ss} - set(sections)
        for section in others:
            expect(page.locator(section)).to_have_count(0)
        snap(page, f"home-{role}")


def test_the_duty_pages_fit_a_390_px_screen(browser, portal_server) -> None:
    from tests.e2e.conftest import sign_in

    context = browser.new_context(base_url=portal_server.base_url, viewport=NARROW)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/login/")
        sign_in(page, "specialist")
        page.wait_for_url(lambda url: "/login" not in url)
        widths = {"home": page.evaluate("document.documentElement.scrollWidth")}
        page.locator(".navbar-toggle").click()
        menu(page, "Orders", "Shipments")
        show(page.locator(LIST_ROWS).first)
        widths["shipment"] = page.evaluate("document.documentElement.scrollWidth")
        snap(page, "shipment-390px")
        page.locator(".navbar-toggle").click()
        menu(page, "Orders", "Returns")
        show(page.locator(LIST_ROWS).first)
        widths["return"] = page.evaluate("document.documentElement.scrollWidth")
        assert all(width <= NARROW["width"] for width in widths.values()), widths
    finally:
        context.close()


# -- every button, every role -------------------------------------------------------------------

URLS = {
    "order": "/salesorderview/show/{}",
    "shipment": "/shipmentview/show/{}",
    "return": "/returnview/show/{}",
    "credit memo": "/creditmemoview/show/{}",
    "dispute": "/disputeview/show/{}",
}
SKIP = re.compile(r"History|Timeline|Printable|Back|Search", re.I)


def _buttons(page: Page) -> list[str]:
    names = []
    for item in (
        page.locator(".container-fluid, .container")
        .locator("form:not(#filter_form) button[type=submit], a.btn")
        .all()
    ):
        if not item.is_visible() or item.get_attribute("target") == "_blank":
            continue
        name = item.inner_text().strip()
        if name and not SKIP.search(name) and name not in names:
            names.append(name)
    return names


def _click(page: Page, url: str, name: str, fresh: bool = True) -> list[tuple[int, str]]:
    """Open ``url`` afresh (unless it is the page shown), click the button called ``name``
    (filling what its form needs); the HTTP status of every page the click loaded."""
    if fresh:
        page.goto(url, wait_until="domcontentloaded")
    button = page.locator(".container-fluid, .container").locator(
        "form:not(#filter_form) button[type=submit], a.btn", has_text=name
    )
    if not button.count() or not button.first.is_visible():
        return []
    form = button.first.locator("xpath=ancestor::form[1]")
    if form.count():
        for field in form.locator("input[required], textarea[required]").all():
            if field.is_visible() and not field.input_value():
                field.fill("e2e walker")
    answers: list[tuple[int, str]] = []

    def seen(response) -> None:
        if response.request.resource_type == "document":
            answers.append((response.status, response.url))

    page.on("response", seen)
    try:
        with page.expect_navigation(wait_until="domcontentloaded"):
            button.first.click()
    finally:
        page.remove_listener("response", seen)
    return answers


def test_every_action_button_works_for_every_role(page_as, fresh) -> None:
    """Each role on a record of each kind of its own (the walker opens them by address:
    the duty tests above come through the menu), clicking every action button there."""
    clicked, bad = 0, []
    for index, role in enumerate(("specialist", "supervisor", "auditor", "admin")):
        page = page_as(role)
        for kind, pattern in URLS.items():
            url = pattern.format(fresh[kind][index])
            page.goto(url, wait_until="domcontentloaded")
            for number, name in enumerate(_buttons(page)):
                for status, where in _click(page, url, name, fresh=number > 0):
                    clicked += 1
                    if status == 403 or status >= 500:
                        bad.append(f"{role} on {kind} {url}: {name!r} → {status} {where}")
    assert not bad, "\n".join(bad)
    assert clicked >= 20, clicked
