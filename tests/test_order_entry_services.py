"""Services behind order entry and changes: amendments re-priced across quantity breaks,
re-allocated or backordered and mailed; the hold-release rule; quantities worded by pack."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.extensions import db
from portal.models import Backorder, Notification, OrderCheck, SalesOrder
from portal.services import catalog, changes, fulfillment, lifecycle, orders
from portal.services.base import ValidationFailed
from portal.services.units import price_text, quantity_text
from tests.conftest import actor
from tests.factories import SETUP, make_catalog
from tests.test_order_entry_api import draft, trade_prices


def _mails(order: SalesOrder, event: str) -> list[Notification]:
    return db.session.query(Notification).filter_by(order_id=order.id, event=event).all()


def test_an_amendment_across_a_break_is_repriced_reallocated_and_mailed(clean_db) -> None:
    data = make_catalog(stock=100)
    trade_prices(data)
    order = draft(data, quantity=5)
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    line = order.lines[0]
    assert (line.unit_price, line.qty_allocated, order.status) == (Decimal("9.00"), 5, "allocated")
    specialist = actor("specialist")
    changes.amend(order, specialist, reason="customer doubles up", quantities={line.id: 60})
    assert line.unit_price == Decimal("7.25")  # the 50 break
    assert (line.qty_allocated, line.qty_backordered, order.status) == (60, 0, "allocated")
    changes.amend(order, specialist, reason="and more", quantities={line.id: 150})
    assert (line.qty_allocated, line.qty_backordered) == (100, 50)
    assert order.status == "partially_allocated"
    backorder = db.session.query(Backorder).filter_by(order_line_id=line.id, status="open").one()
    assert backorder.quantity == 50
    changes.amend(order, specialist, reason="back down", quantities={line.id: 8})
    assert line.unit_price == Decimal("9.00")  # below the 10 break again
    assert (line.qty_allocated, line.qty_backordered, order.status) == (8, 0, "allocated")
    mails = _mails(order, "amended")
    assert [mail.subject for mail in mails] == [
        f"Order {order.number} amended (revision {n})" for n in (1, 2, 3)
    ]
    assert "150 ea at USD 7.25 per piece, 50 ea on backorder" in mails[1].body
    assert "customer doubles up" in mails[0].body


def test_an_overridden_price_survives_an_amendment(clean_db) -> None:
    data = make_catalog()
    trade_prices(data)
    order = draft(data, quantity=5)
    order.lines[0].unit_price = Decimal("8.50")
    db.session.commit()
    lifecycle.approve_price_override(order.lines[0], actor("supervisor"), "agreed")
    lifecycle.confirm(order, SETUP)
    changes.amend(order, actor("specialist"), reason="more", quantities={order.lines[0].id: 60})
    assert order.lines[0].unit_price == Decimal("8.50")


def test_releasing_a_hold_reruns_the_checks_and_refuses_without_a_ship_to(clean_db) -> None:
    data = make_catalog()
    order = orders.orders.create_with_lines(
        {"customer_id": data.customer.id, "customer_po": "PO-HOLD"},
        [{"product_id": data.products[0].id, "quantity": 5}],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    assert order.status == "on_hold"
    supervisor = actor("supervisor")
    with pytest.raises(ValidationFailed) as refused:
        lifecycle.release_hold(order, supervisor, "customer will collect")
    assert refused.value.field_errors == {
        "ship_to": ["no ship-to address: fix it before the hold is released"]
    }
    db.session.expire_all()
    order = db.session.get(SalesOrder, order.id)
    assert order.status == "on_hold"
    orders.orders.update(order, {"ship_to_id": data.customer.addresses[0].id}, SETUP)
    lifecycle.release_hold(order, supervisor, "requested date agreed by phone")
    assert order.status == "confirmed"
    stored = {c.name: c.passed for c in db.session.query(OrderCheck).filter_by(order_id=order.id)}
    assert stored["ship_to"] is True and stored["requested_date"] is False  # run again, stored


def test_mails_word_quantities_by_pack_not_as_packs(clean_db) -> None:
    data = make_catalog(stock=0)
    bolts = catalog.products.create(
        {
            "sku": "BOLT-8",
            "name": "Hex bolt M8",
            "unit": "box",
            "pack_size": 50,
            "list_price": Decimal("0.18"),
        },
        SETUP,
    )
    assert quantity_text(1200, bolts) == "1,200 pcs (24 × box of 50)"
    assert quantity_text(1210, bolts) == "1,210 pcs (not whole packs: box of 50)"
    assert quantity_text(3, data.products[0]) == "3 ea"
    assert price_text(Decimal("0.1800"), "EUR") == "EUR 0.18"
    assert price_text(Decimal("0.1825"), "EUR") == "EUR 0.1825"
    assert price_text(Decimal("1234567.5"), "USD") == "USD 1,234,567.50"
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "ship_to_id": data.customer.addresses[0].id,
            "requested_date": draft(data).requested_date,
            "customer_po": "PO-BOLTS",
        },
        [{"product_id": bolts.id, "quantity": 1200}],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    body = _mails(order, "confirmed")[0].body
    assert "BOLT-8 Hex bolt M8 — 1,200 pcs (24 × box of 50) at USD 0.18 per piece" in body
    assert "1200 box" not in body
    assert "Order total: USD 216.00" in body
