"""Order entry in the browser's forms (test client): the entry page, the order page's panels
and line forms, the Supervisor's price override queue, and bounded queries per page."""

from __future__ import annotations

import re
from datetime import timedelta

from portal.extensions import db
from portal.models import OrderLine, PriceOverrideRequest, SalesOrder, utcnow
from portal.services import catalog, lifecycle, orders, price_overrides
from tests.conftest import actor, login
from tests.factories import SETUP, make_catalog
from tests.test_lookups import counted_queries
from tests.test_order_entry_api import draft, trade_prices

FLASH = re.compile(
    r'<div class="alert alert-(\w+)[^"]*">\s*(?:<button[^>]*>.*?</button>)?\s*(.*?)\s*</div>', re.S
)


def flashes(html: str) -> list[tuple[str, str]]:
    return [(kind, re.sub(r"\s+", " ", text)) for kind, text in FLASH.findall(html)]


def entry_form(data, **extra: str) -> dict[str, str]:
    return {
        "customer_id": str(data.customer.id),
        "customer_label": "C1 Acme Ltd",
        "ship_to_id": str(data.customer.addresses[0].id),
        "customer_po": "PO-WEB-1",
        "requested_date": (utcnow().date() + timedelta(days=30)).isoformat(),
        "product_id_1": str(data.products[0].id),
        "product_label_1": "SKU-1 Product 1",
        "quantity_1": "12",
        "product_id_2": str(data.products[1].id),
        "quantity_2": "3",
        **extra,
    }


def test_the_entry_page_saves_a_draft_with_its_lines_and_lands_on_it(clean_db) -> None:
    data = make_catalog()
    trade_prices(data)
    client = login(clean_db, "specialist")
    page = client.get("/order-entry/")
    assert page.status_code == 200
    assert 'data-picker="/api/v1/lookup/customer"' in page.text
    assert "/static/orderbridge/picker.js" in page.text
    saved = client.post("/order-entry/", data=entry_form(data))
    assert saved.status_code == 302
    order = db.session.execute(db.select(SalesOrder)).scalar_one()
    assert saved.headers["Location"].endswith(f"/salesorderview/show/{order.id}")
    assert [(line.quantity, str(line.unit_price)) for line in order.lines] == [
        (12, "8.0000"),
        (3, "19.0000"),
    ]
    shown = client.get(saved.headers["Location"]).text
    assert (
        "success",
        f"{order.number} saved as a draft with 2 line(s); Validate it to run the checks",
    ) in flashes(shown)


def test_a_refused_entry_shows_each_fields_reason_with_the_input_kept(clean_db) -> None:
    data = make_catalog()
    client = login(clean_db, "specialist")
    refused = client.post(
        "/order-entry/",
        data=entry_form(data, quantity_1="twelve", requested_date="31/12/2026", product_id_2=""),
    )
    assert refused.status_code == 422
    html = refused.text
    assert 'id="error-quantity_1"' in html and "not a whole number" in html
    assert 'id="error-requested_date"' in html and "not a date (YYYY-MM-DD)" in html
    assert 'id="error-product_id_2"' in html
    assert (
        'value="twelve"' in html
        and 'value="SKU-1 Product 1"' in html
        and 'value="PO-WEB-1"' in html
    )
    assert db.session.query(SalesOrder).count() == 0
    foreign = catalog.customers.create({"code": "C9", "name": "Other", "credit_limit": 0}, SETUP)
    address = catalog.customer_addresses.create(
        {
            "customer_id": foreign.id,
            "line1": "1 Road",
            "city": "Ely",
            "postal_code": "E1",
            "country": "GB",
        },
        SETUP,
    )
    wrong_address = client.post("/order-entry/", data=entry_form(data, ship_to_id=str(address.id)))
    assert wrong_address.status_code == 422
    assert "is not an address of this customer" in wrong_address.text


def test_validate_shows_the_checklist_and_a_hold_as_a_warning(clean_db) -> None:
    data = make_catalog()
    order = draft(data)
    catalog.customers.update(data.customer, {"credit_hold": True}, SETUP, data.customer.version)
    client = login(clean_db, "specialist")
    before = client.get(f"/salesorderview/show/{order.id}").text
    assert "not run yet: Validate runs it" in before
    assert "Version" not in before and ">None<" not in before
    done = client.post(f"/salesorderview/confirm/{order.id}", follow_redirects=True)
    held = [(kind, text) for kind, text in flashes(done.text) if "on hold" in text]
    assert [kind for kind, _ in held] == ["warning"]
    assert "Customer active, no credit hold: customer C1 is on credit hold" in held[0][1]
    assert "customer_active" not in held[0][1]
    html = done.text
    assert 'id="order-hold"' in html
    rows = re.findall(r'data-check="(\w+)".*?class="check-result">(\w*)<', html, re.S)
    assert len(rows) == 9
    assert dict(rows)["customer_active"] == "fail" and dict(rows)["ship_to"] == "pass"
    assert "customer C1 is on credit hold" in html


def test_order_page_lines_are_changed_removed_and_a_price_requested(clean_db) -> None:
    data = make_catalog()
    order = draft(data)
    client = login(clean_db, "specialist")
    added = client.post(
        f"/order-lines/add/{order.id}",
        data={"product_id": str(data.products[2].id), "quantity": "4"},
        follow_redirects=True,
    )
    assert ("success", "line added") in flashes(added.text)
    db.session.expire_all()
    order = db.session.get(SalesOrder, order.id)
    first, new = order.lines
    changed = client.post(
        f"/order-lines/change/{order.id}",
        data={"line_id": str(first.id), "quantity": "7", "version": str(first.version)},
        follow_redirects=True,
    )
    assert ("success", "line changed") in flashes(changed.text)
    stale = client.post(
        f"/order-lines/change/{order.id}",
        data={"line_id": str(first.id), "quantity": "9", "version": str(first.version)},
        follow_redirects=True,
    )
    assert any(
        kind == "danger" and "changed by someone else" in text for kind, text in flashes(stale.text)
    )
    removed = client.post(
        f"/order-lines/remove/{order.id}", data={"line_id": str(new.id)}, follow_redirects=True
    )
    assert ("success", "line removed") in flashes(removed.text)
    asked = client.post(
        f"/order-lines/request-price/{order.id}",
        data={"line_id": str(first.id), "unit_price": "8.50", "reason": "volume deal"},
        follow_redirects=True,
    )
    assert any("a Supervisor decides" in text for _, text in flashes(asked.text))
    assert "USD 8.50 requested by specialist" in asked.text
    db.session.expire_all()
    assert db.session.get(OrderLine, first.id).unit_price == first.unit_price  # not yet


def test_supervisor_decides_in_the_queue_and_specialists_do_not_see_it(clean_db) -> None:
    data = make_catalog()
    order = draft(data)
    request = price_overrides.request_price(order.lines[0], actor("specialist"), 8, "match")
    specialist = login(clean_db, "specialist")
    assert specialist.get("/price-overrides/").status_code in (302, 403)
    assert "Price overrides" not in specialist.get(f"/salesorderview/show/{order.id}").text
    supervisor = login(clean_db, "supervisor")
    queue = supervisor.get("/price-overrides/").text
    assert order.number in queue and "USD 8.00" in queue and "USD 9.50" in queue
    no_reason = supervisor.post(
        f"/price-overrides/approve/{request.id}", data={}, follow_redirects=True
    )
    assert any("give the reason" in text for _, text in flashes(no_reason.text))
    done = supervisor.post(
        f"/price-overrides/approve/{request.id}",
        data={"reason": "key account"},
        follow_redirects=True,
    )
    assert any("approved" in text for kind, text in flashes(done.text) if kind == "success")
    db.session.expire_all()
    assert db.session.get(PriceOverrideRequest, request.id).status == "approved"
    assert str(db.session.get(OrderLine, order.lines[0].id).unit_price) == "8.0000"


def test_cancel_one_line_of_a_confirmed_order_shows_the_cancelled_quantity(clean_db) -> None:
    data = make_catalog()
    order = draft(data)
    lifecycle.confirm(order, SETUP)
    client = login(clean_db, "specialist")
    page = client.get(f"/salesorderview/show/{order.id}").text
    assert "Cancel line 1" in page and "/order-lines/change/" not in page
    done = client.post(
        f"/order-lines/cancel/{order.id}",
        data={"line_id": str(order.lines[0].id), "reason_code": "customer_request"},
        follow_redirects=True,
    )
    assert any("line cancelled" in text for _, text in flashes(done.text)), flashes(done.text)
    assert re.search(r'class="line-cancelled">5<', done.text)


def _queries(client, path: str) -> int:
    db.session.remove()
    with counted_queries() as statements:
        assert client.get(path).status_code == 200
    return len(statements)


def test_the_order_page_and_entry_endpoints_take_a_bounded_number_of_queries(clean_db) -> None:
    data = make_catalog()
    small = draft(data, 5, po="PO-S")
    big = draft(data, 5, po="PO-B")
    orders.add_lines(big, [{"product_id": p.id, "quantity": 2} for p in data.products * 4], SETUP)
    for order in (small, big):
        lifecycle.confirm(order, SETUP)
    small_page, big_page = (f"/salesorderview/show/{order.id}" for order in (small, big))
    quote = (
        f"/api/v1/sales_order/quote_line?customer_id={data.customer.id}"
        f"&product_id={data.products[0].id}&quantity=3"
    )
    client = login(clean_db, "specialist")
    client.get(small_page)  # warm up
    assert _queries(client, small_page) == _queries(client, big_page)
    assert _queries(client, big_page) <= 40
    assert _queries(client, "/order-entry/") <= 10
    assert _queries(client, quote) <= 10  # sign-in 5, product, customer, price, stock


def test_the_order_form_stays_on_the_record_keeps_refused_input_and_lists_own_addresses(
    clean_db,
) -> None:
    data = make_catalog()
    order = draft(data)
    other = catalog.customers.create({"code": "C7", "name": "Elsewhere", "credit_limit": 0}, SETUP)
    foreign = catalog.customer_addresses.create(
        {
            "customer_id": other.id,
            "line1": "7 Far Lane",
            "city": "Hull",
            "postal_code": "H1",
            "country": "GB",
        },
        SETUP,
    )
    client = login(clean_db, "specialist")
    url = f"/salesorderview/edit/{order.id}"
    form = client.get(url).text
    assert (
        "1 Dock Street" in form and "7 Far Lane" not in form and f'value="{foreign.id}"' not in form
    )
    refused = client.post(
        url, data={"customer_po": "KEEP-ME", "incoterm": "XYZ", "version": str(order.version)}
    )
    assert refused.status_code == 422
    assert 'value="KEEP-ME"' in refused.text and "must be one of" in refused.text
    saved = client.post(url, data={"customer_po": "PO-NEW", "version": str(order.version)})
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith(f"/salesorderview/show/{order.id}")


def test_the_customer_page_shows_its_orders_and_credit_exposure(clean_db) -> None:
    data = make_catalog()
    order = draft(data, quantity=100, po="PO-EXP")
    lifecycle.confirm(order, SETUP)
    draft(data, quantity=5, po="PO-DRAFT")
    html = login(clean_db, "specialist").get(f"/customerview/show/{data.customer.id}").text
    assert order.number in html and "PO-DRAFT" in html
    assert re.search(r'id="exposure-total"><strong>USD 950.00<', html)
    assert re.search(r'id="exposure-headroom">USD 9,050.00<', html)
    assert "Version" not in html


def test_order_pages_show_money_with_its_currency_and_labels(clean_db) -> None:
    data = make_catalog()
    changes = {"currency": "EUR", "credit_hold": True}
    catalog.customers.update(data.customer, changes, SETUP, data.customer.version)
    order = draft(data, quantity=200, po="PO-EUR")
    lifecycle.confirm(order, SETUP)
    client = login(clean_db, "specialist")
    listed = client.get("/salesorderview/list/").text
    assert "EUR 1,900.00" in listed
    assert re.search(r"<td>\s*On hold\s*</td>", listed)
    assert not re.search(r"<td>\s*on_hold\s*</td>", listed)
    shown = client.get(f"/salesorderview/show/{order.id}").text
    assert "EUR 1,900.00" in shown and "None" not in re.sub(
        r"<script.*?</script>", "", shown, flags=re.S
    )


def test_a_refused_line_form_shows_the_order_again_with_the_typed_input(clean_db) -> None:
    data = make_catalog()
    order = draft(data)
    line = order.lines[0]
    client = login(clean_db, "specialist")
    added = client.post(
        f"/order-lines/add/{order.id}",
        data={"product_label": "SKU-3 Product 3", "quantity": "lots"},
    )
    assert added.status_code == 422
    assert 'value="SKU-3 Product 3"' in added.text and 'value="lots"' in added.text
    assert re.search(
        r'class="help-block text-danger line-refusal">[^<]*Product: pick one', added.text
    )
    changed = client.post(
        f"/order-lines/change/{order.id}",
        data={"line_id": str(line.id), "quantity": "0", "version": str(line.version)},
    )
    assert changed.status_code == 422 and 'name="quantity" value="0"' in changed.text
    asked = client.post(
        f"/order-lines/request-price/{order.id}",
        data={"line_id": str(line.id), "unit_price": "7.25"},
    )
    assert asked.status_code == 422
    assert 'value="7.25"' in asked.text and '<details style="display:inline-block" open>' in (
        asked.text
    )
    db.session.expire_all()
    assert len(db.session.get(SalesOrder, order.id).lines) == 1  # nothing stored


def test_a_post_to_fabs_order_form_goes_through_enter_order(clean_db) -> None:
    data = make_catalog()
    client = login(clean_db, "specialist")
    header = {"customer": str(data.customer.id), "customer_po": "PO-FAB"}
    refused = client.post("/salesorderview/add", data=header, follow_redirects=True)
    assert refused.status_code == 422 and "add at least one line" in refused.text
    assert f'id="customer_id" name="customer_id" value="{data.customer.id}"' in refused.text
    assert db.session.query(SalesOrder).count() == 0
    lines = {"product_id_1": str(data.products[0].id), "quantity_1": "12"}
    saved = client.post("/salesorderview/add", data={**header, **lines}, follow_redirects=True)
    order = db.session.query(SalesOrder).one()
    assert saved.request.path == f"/salesorderview/show/{order.id}"
    assert order.customer_po == "PO-FAB" and len(order.lines) == 1 and order.status == "draft"


def test_the_order_page_shows_the_units_returned_per_line(clean_db) -> None:
    from portal.services import returns
    from tests.test_finance import shipped_order

    data = make_catalog()
    order, _ = shipped_order(data, (3, 2))
    rma = returns.request_return(
        order, actor("specialist"), lines={order.lines[0].id: 2}, reason="dented", warehouse_id=1
    )
    returns.authorize(rma, actor("supervisor"))
    returns.receive(rma, actor("specialist"), {rma.lines[0].id: (2, "restock")})
    page = login(clean_db, "specialist").get(f"/salesorderview/show/{order.id}").text
    header = page.split('id="order-lines"', 1)[1].split("</thead>", 1)[0]
    assert "<th>Shipped</th><th>Cancelled</th><th>Returned</th>" in header
    assert re.findall(r'class="line-returned">(\d+)<', page) == ["2", "0"]
