"""Order record page actions in the portal: each posts to its route, calls one service,
flashes the outcome, and refuses cleanly."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import SalesOrder
from portal.services import orders
from tests.conftest import login
from tests.factories import SETUP, make_catalog


def _flashes(page: str) -> list[str]:
    found = re.findall(r"<div class=\"alert alert-[a-z]+\">(.*?)</div>", page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>|&times;|\s+", " ", item)).strip() for item in found]


def _draft(data, **header):
    return orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": "PO-UI",
            "requested_date": datetime.now(UTC).date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
            **header,
        },
        [{"product_id": data.products[0].id, "quantity": 8}],
        SETUP,
    )


def test_specialist_confirms_allocates_ships_and_sees_the_timeline(clean_db) -> None:
    data = make_catalog()
    order = _draft(data)
    client = login(clean_db, "specialist")
    page = client.get(f"/salesorderview/show/{order.id}")
    assert page.status_code == 200 and 'id="action-confirm"' in page.text
    done = client.post(f"/salesorderview/confirm/{order.id}", follow_redirects=True)
    assert any("confirmed, promised for" in f for f in _flashes(done.text))
    done = client.post(f"/salesorderview/allocate/{order.id}", follow_redirects=True)
    assert any("is allocated" in f for f in _flashes(done.text))
    form = client.get(f"/salesorderview/ship/{order.id}")
    assert form.status_code == 200 and f'name="qty_{order.lines[0].id}"' in form.text
    done = client.post(
        f"/salesorderview/ship/{order.id}",
        data={
            "warehouse_id": str(data.warehouses[0].id),
            "carrier": "DHL",
            "tracking_number": "1Z",
            f"qty_{order.lines[0].id}": "8",
        },
        follow_redirects=True,
    )
    assert any("shipment SH-000001 created" in f for f in _flashes(done.text)), _flashes(done.text)
    db.session.expire_all()
    assert db.session.get(SalesOrder, order.id).status == "shipped"
    timeline = client.get(f"/salesorderview/timeline/{order.id}").text
    for expected in ("sales order status", "shipment create", "mail: shipped", "specialist"):
        assert expected in timeline, expected


def test_refusals_flash_the_reason_and_change_nothing(clean_db) -> None:
    data = make_catalog()
    order = _draft(data, ship_to_id=None)
    client = login(clean_db, "specialist")
    done = client.post(f"/salesorderview/confirm/{order.id}", follow_redirects=True)
    assert any("on hold" in f and "Ship-to address complete" in f for f in _flashes(done.text))
    done = client.post(f"/salesorderview/allocate/{order.id}", follow_redirects=True)
    assert any("can't be allocated" in f for f in _flashes(done.text))
    done = client.post(
        f"/salesorderview/cancel/{order.id}", data={"reason_code": "bogus"}, follow_redirects=True
    )
    assert any("Reason: Must be one of" in f for f in _flashes(done.text))
    db.session.expire_all()
    assert db.session.get(SalesOrder, order.id).status == "on_hold"


def test_only_supervisors_release_holds_in_the_ui(clean_db) -> None:
    data = make_catalog()
    order = _draft(data, ship_to_id=None)
    specialist = login(clean_db, "specialist")
    specialist.post(f"/salesorderview/confirm/{order.id}")
    assert 'id="action-release"' not in specialist.get(f"/salesorderview/show/{order.id}").text
    denied = specialist.post(f"/salesorderview/release/{order.id}", data={"reason": "x"})
    assert denied.status_code == 403
    supervisor = login(clean_db, "supervisor")
    page = supervisor.get(f"/salesorderview/show/{order.id}").text
    assert 'id="action-release"' in page
    refused = supervisor.post(
        f"/salesorderview/release/{order.id}",
        data={"reason": "customer collects"},
        follow_redirects=True,
    )
    assert any("no ship-to address" in f for f in _flashes(refused.text)), _flashes(refused.text)
    db.session.expire_all()
    order = db.session.get(SalesOrder, order.id)
    assert order.status == "on_hold"
    orders.orders.update(order, {"ship_to_id": data.customer.addresses[0].id}, SETUP)
    done = supervisor.post(
        f"/salesorderview/release/{order.id}",
        data={"reason": "customer collects"},
        follow_redirects=True,
    )
    assert any("hold released" in f for f in _flashes(done.text))


def test_amendment_form_creates_a_revision(clean_db) -> None:
    data = make_catalog()
    order = _draft(data)
    client = login(clean_db, "specialist")
    client.post(f"/salesorderview/confirm/{order.id}")
    db.session.expire_all()
    order = db.session.get(SalesOrder, order.id)
    assert 'name="reason"' in client.get(f"/salesorderview/amend/{order.id}").text
    done = client.post(
        f"/salesorderview/amend/{order.id}",
        data={
            "reason": "more needed",
            "version": str(order.version),
            f"qty_{order.lines[0].id}": "12",
        },
        follow_redirects=True,
    )
    assert any("revision 1" in f for f in _flashes(done.text)), _flashes(done.text)
    stale = client.post(
        f"/salesorderview/amend/{order.id}",
        data={"reason": "again", "version": str(order.version), f"qty_{order.lines[0].id}": "16"},
        follow_redirects=True,
    )
    assert any("changed by someone else" in f for f in _flashes(stale.text))


def test_needs_attention_lists_backordered_orders(clean_db) -> None:
    data = make_catalog(stock=0)
    order = _draft(data)
    client = login(clean_db, "specialist")
    client.post(f"/salesorderview/confirm/{order.id}")
    client.post(f"/salesorderview/allocate/{order.id}")
    page = client.get("/attention/")
    assert page.status_code == 200
    assert order.number in page.text and "backordered" in page.text


def test_ship_form_offers_each_warehouse_holding_stock_then_invoice(clean_db) -> None:
    from portal.services import inventory

    data = make_catalog(stock=0)
    main, overflow = data.warehouses
    inventory.receive(data.products[0].id, main.id, 5, SETUP)
    inventory.receive(data.products[0].id, overflow.id, 3, SETUP)
    order = _draft(data)
    client = login(clean_db, "specialist")
    client.post(f"/salesorderview/confirm/{order.id}")
    client.post(f"/salesorderview/allocate/{order.id}")
    form = client.get(f"/salesorderview/ship/{order.id}").text
    assert 'id="ship-from-W1"' in form and 'id="ship-from-W2"' in form
    line_id = order.lines[0].id
    for warehouse, quantity in ((main, "5"), (overflow, "3")):
        done = client.post(
            f"/salesorderview/ship/{order.id}",
            data={"warehouse_id": str(warehouse.id), "carrier": "UPS", f"qty_{line_id}": quantity},
            follow_redirects=True,
        )
        assert any("created" in f for f in _flashes(done.text)), _flashes(done.text)
    page = client.get(f"/salesorderview/show/{order.id}").text
    assert 'id="action-invoice"' in page
    done = client.post(f"/salesorderview/invoice/{order.id}", follow_redirects=True)
    assert any(f.startswith("invoiced: INV-000001, INV-000002") for f in _flashes(done.text))
    again = client.post(f"/salesorderview/invoice/{order.id}", follow_redirects=True)
    assert any("no shipment left to invoice" in f for f in _flashes(again.text))
