"""Order lifecycle: validation checklist, holds, allocation, backorders, shipping, changes,
returns — each rule through the services against the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.models import (
    Backorder,
    InventoryMovement,
    Notification,
    OrderCheck,
    OrderRevision,
    OrderStatus,
)
from portal.services import (
    catalog,
    changes,
    fulfillment,
    inventory,
    lifecycle,
    orders,
    returns,
    states,
)
from portal.services.base import ConflictError, PermissionDenied, ValidationFailed
from tests.conftest import actor
from tests.factories import SETUP, make_catalog

TODAY = datetime.now(UTC).date()


def _order(data, quantities=(10,), **header):
    fields = {
        "customer_id": data.customer.id,
        "customer_po": header.pop("customer_po", "PO-100"),
        "requested_date": TODAY + timedelta(days=14),
        "ship_to_id": data.customer.addresses[0].id,
        **header,
    }
    return orders.orders.create_with_lines(
        fields,
        [{"product_id": data.products[i].id, "quantity": qty} for i, qty in enumerate(quantities)],
        SETUP,
    )


def _checks(order) -> dict[str, bool]:
    rows = db.session.query(OrderCheck).filter_by(order_id=order.id).all()
    return {row.name: row.passed for row in rows}


# -- validation checklist ------------------------------------------------------------------


def test_a_clean_order_passes_every_check_and_is_confirmed_with_a_promise(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    lifecycle.confirm(order, actor("specialist"))
    assert order.status == OrderStatus.CONFIRMED.value
    assert _checks(order) == dict.fromkeys(lifecycle.CHECK_NAMES, True)
    assert order.promised_date == TODAY + timedelta(days=14)


def _fails(order, check: str, spec: str = "specialist") -> str:
    lifecycle.confirm(order, actor(spec))
    assert order.status == OrderStatus.ON_HOLD.value
    failed = [name for name, passed in _checks(order).items() if not passed]
    assert failed == [check], failed
    assert check in order.hold_reasons
    return order.hold_reasons


def test_inactive_customer_fails(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    catalog.customers.update(data.customer, {"active": False}, SETUP)
    assert "inactive" in _fails(order, "customer_active")


def test_credit_hold_fails(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    catalog.customers.update(data.customer, {"credit_hold": True}, SETUP)
    assert "credit hold" in _fails(order, "customer_active")


def test_credit_exposure_counts_other_open_orders(clean_db) -> None:
    data = make_catalog()
    catalog.customers.update(data.customer, {"credit_limit": Decimal("150.00")}, SETUP)
    first = _order(data, (10,), customer_po="PO-1")  # 10 × 9.50 = 95.00
    lifecycle.confirm(first, SETUP)
    assert first.status == "confirmed"
    second = _order(data, (10,), customer_po="PO-2")
    assert "exceeds credit limit USD 150.00" in _fails(second, "credit_exposure")


def test_duplicate_customer_po_on_another_open_order_fails(clean_db) -> None:
    data = make_catalog()
    first = _order(data, customer_po="PO-SAME")
    second = _order(data, customer_po="PO-SAME")
    assert first.number in _fails(second, "duplicate_po")
    changes.cancel_order(first, SETUP, "duplicate")
    lifecycle.confirm(second, SETUP)
    assert second.status == "confirmed"


def test_inactive_product_fails(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    catalog.products.update(data.products[0], {"active": False}, SETUP)
    assert "SKU-1" in _fails(order, "products_active")


def test_quantity_not_a_pack_multiple_fails(clean_db) -> None:
    data = make_catalog()
    catalog.products.update(data.products[0], {"pack_size": 6}, SETUP)
    order = _order(data, (10,))
    assert "not a multiple of 6" in _fails(order, "pack_size")


def test_price_off_the_price_list_fails_until_a_supervisor_approves(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    orders.order_lines.update(order.lines[0], {"unit_price": Decimal("5.00")}, SETUP)
    assert "price list 9.50" in _fails(order, "price")
    with pytest.raises(PermissionDenied):
        lifecycle.approve_price_override(order.lines[0], actor("specialist"), "deal")
    lifecycle.approve_price_override(order.lines[0], actor("supervisor"), "matched competitor")
    assert order.lines[0].price_override_by == "supervisor"
    lifecycle.confirm(order, actor("specialist"))
    assert order.status == "confirmed"


def test_requested_date_before_lead_time_fails(clean_db) -> None:
    data = make_catalog()
    catalog.products.update(data.products[0], {"lead_time_days": 30}, SETUP)
    order = _order(data)
    assert "lead time" in _fails(order, "requested_date")


def test_missing_or_incomplete_ship_to_fails(clean_db) -> None:
    data = make_catalog()
    order = _order(data, ship_to_id=None)
    assert "no ship-to" in _fails(order, "ship_to")


def test_missing_terms_fails(clean_db) -> None:
    data = make_catalog()
    catalog.customers.update(data.customer, {"payment_term_id": None}, SETUP)
    order = _order(data)
    assert "no payment terms" in _fails(order, "terms")


def test_supervisor_releases_a_hold_with_a_reason(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    catalog.customers.update(data.customer, {"credit_hold": True}, SETUP)
    lifecycle.confirm(order, actor("specialist"))
    with pytest.raises(PermissionDenied):
        lifecycle.release_hold(order, actor("specialist"), "please")
    with pytest.raises(ValidationFailed):
        lifecycle.release_hold(order, actor("supervisor"), " ")
    lifecycle.release_hold(order, actor("supervisor"), "paid by wire today")
    assert order.status == "confirmed" and order.hold_reasons is None


def test_quote_converts_to_a_draft(clean_db) -> None:
    data = make_catalog()
    quote = _order(data, status="quote")
    with pytest.raises(ConflictError):
        lifecycle.confirm(quote, SETUP)
    lifecycle.convert_quote(quote, SETUP)
    assert quote.status == "draft"


# -- state machine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    sorted((s, t) for s, targets in states.ORDERS.transitions.items() for t in targets),
)
def test_every_legal_transition_is_in_the_table(source: str, target: str) -> None:
    assert target in {status.value for status in OrderStatus}
    assert source != target


def test_illegal_transitions_are_refused_with_409(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    legal = states.ORDERS.transitions["draft"]
    for status in OrderStatus:
        if status.value in legal:
            continue
        with pytest.raises(ConflictError) as caught:
            states.transition(order, status.value, SETUP)
        assert caught.value.status == 409
    assert order.status == "draft"


# -- allocation and backorders -------------------------------------------------------------


def test_partial_allocation_across_two_warehouses_in_priority_order(clean_db) -> None:
    data = make_catalog(stock=0)
    product = data.products[0]
    main, overflow = data.warehouses
    inventory.receive(product.id, overflow.id, 30, SETUP)
    inventory.receive(product.id, main.id, 20, SETUP)
    order = _order(data, (70,))
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, actor("specialist"))
    line = order.lines[0]
    assert (line.qty_allocated, line.qty_backordered) == (50, 20)
    assert inventory.stock_level(product.id, main.id).available == 0
    assert inventory.stock_level(product.id, overflow.id).available == 0
    assert order.status == OrderStatus.PARTIALLY_ALLOCATED.value
    backorder = db.session.query(Backorder).one()
    assert (backorder.quantity, backorder.status) == (20, "open")
    assert backorder.expected_date == TODAY + timedelta(days=product.lead_time_days)
    assert inventory.ledger_discrepancies() == []
    assert db.session.query(Notification).filter_by(event="backordered").count() == 1


def test_receipt_fills_backorders_highest_priority_then_oldest(clean_db) -> None:
    data = make_catalog(stock=0)
    product, main = data.products[0], data.warehouses[0]
    first = _order(data, (10,), customer_po="A")
    second = _order(data, (10,), customer_po="B")
    for order in (first, second):
        lifecycle.confirm(order, SETUP)
        fulfillment.allocate(order, SETUP)
    assert first.status == second.status == "confirmed"
    inventory.receive(product.id, main.id, 15, SETUP)
    filled = fulfillment.fill_backorders(product.id, SETUP)
    assert filled == [f"{first.number}/1", f"{second.number}/1"]
    assert (first.lines[0].qty_allocated, second.lines[0].qty_allocated) == (10, 5)
    assert first.status == "allocated" and second.status == "partially_allocated"
    assert second.lines[0].qty_backordered == 5
    assert [b.status for b in db.session.query(Backorder).order_by(Backorder.id)] == [
        "filled",
        "open",
    ]


def test_allocation_needs_a_confirmed_order(clean_db) -> None:
    data = make_catalog()
    order = _order(data)
    with pytest.raises(ConflictError):
        fulfillment.allocate(order, SETUP)


# -- shipping and delivery -----------------------------------------------------------------


def _allocated(data, quantities=(10, 4)):
    order = _order(data, quantities)
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    return order


def test_partial_shipment_then_rest_then_delivery(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data)
    main = data.warehouses[0].id
    first, second = order.lines
    shipment = fulfillment.ship(
        order,
        actor("specialist"),
        warehouse_id=main,
        lines={first.id: 6},
        carrier="DHL",
        tracking_number="TRK1",
        eta=TODAY + timedelta(days=3),
    )
    assert order.status == "partially_shipped"
    assert (first.qty_shipped, first.qty_allocated) == (6, 4)
    level = inventory.stock_level(first.product_id, main)
    assert (level.on_hand, level.allocated) == (94, 4)
    rest = fulfillment.ship(
        order, SETUP, warehouse_id=main, lines={first.id: 4, second.id: 4}, carrier="DHL"
    )
    assert order.status == "shipped"
    fulfillment.deliver(shipment, SETUP, TODAY)
    assert order.status == "shipped"
    fulfillment.deliver(rest, SETUP, TODAY)
    assert order.status == "delivered"
    assert inventory.ledger_discrepancies() == []
    events = [n.event for n in db.session.query(Notification).order_by(Notification.id)]
    assert events == ["confirmed", "shipped", "shipped", "delivered", "delivered"]


def test_shipping_more_than_allocated_is_refused(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data)
    with pytest.raises(ValidationFailed) as caught:
        fulfillment.ship(
            order,
            SETUP,
            warehouse_id=data.warehouses[0].id,
            lines={order.lines[0].id: 11},
            carrier="DHL",
        )
    assert "only 10 allocated" in str(caught.value.field_errors["lines"])


def test_a_late_shipment_needs_a_delay_reason_and_is_flagged(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data)
    late_eta = order.promised_date + timedelta(days=5)
    kwargs = {
        "warehouse_id": data.warehouses[0].id,
        "lines": {order.lines[0].id: 10},
        "carrier": "UPS",
        "eta": late_eta,
    }
    with pytest.raises(ValidationFailed) as caught:
        fulfillment.ship(order, SETUP, **kwargs)
    assert "delay_reason" in caught.value.field_errors
    shipment = fulfillment.ship(order, SETUP, delay_reason="carrier_delay", **kwargs)
    assert shipment.is_late
    attention = fulfillment.needs_attention(TODAY)
    assert [(a.order.number, a.reason.split(":")[0]) for a in attention] == [(order.number, "late")]
    assert db.session.query(Notification).filter_by(event="delayed").count() == 1


def test_updating_an_eta_past_the_promise_makes_it_late(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data)
    shipment = fulfillment.ship(
        order,
        SETUP,
        warehouse_id=data.warehouses[0].id,
        lines={order.lines[0].id: 10},
        carrier="UPS",
    )
    late = order.promised_date + timedelta(days=2)
    with pytest.raises(ValidationFailed):
        fulfillment.update_shipment(shipment, {"eta": late}, SETUP)
    fulfillment.update_shipment(shipment, {"eta": late, "delay_reason": "weather"}, SETUP)
    assert shipment.is_late and shipment.version == 2


# -- amendments and cancellations ----------------------------------------------------------


def test_amendment_is_a_revision_and_releases_surplus_allocation(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data)
    line = order.lines[0]
    main = data.warehouses[0].id
    fulfillment.ship(order, SETUP, warehouse_id=main, lines={line.id: 4}, carrier="DHL")
    with pytest.raises(ValidationFailed) as caught:
        changes.amend(order, actor("specialist"), reason="smaller", quantities={line.id: 2})
    assert "4 already shipped" in str(caught.value.field_errors)
    with pytest.raises(ValidationFailed):
        changes.amend(order, actor("specialist"), reason=" ", quantities={line.id: 6})
    revision = changes.amend(
        order,
        actor("specialist"),
        reason="customer reduced the order",
        quantities={line.id: 6},
        header={"customer_po": "PO-100-B"},
    )
    assert (revision.revision, revision.actor, order.revision) == (1, "specialist", 1)
    assert '"to": 6' in revision.diff and "PO-100-B" in revision.diff
    assert (line.quantity, line.qty_allocated) == (6, 2)
    assert inventory.stock_level(line.product_id, main).allocated == 2
    assert db.session.query(OrderRevision).count() == 1
    assert inventory.ledger_discrepancies() == []


def test_cancelling_an_order_releases_stock_and_closes_backorders(clean_db) -> None:
    data = make_catalog(stock=5)
    order = _allocated(data, (10,))
    assert order.lines[0].qty_backordered == 5
    with pytest.raises(ValidationFailed):
        changes.cancel_order(order, SETUP, "bored")
    changes.cancel_order(order, actor("specialist"), "customer_request", "went elsewhere")
    assert order.status == "cancelled"
    line = order.lines[0]
    assert (line.qty_cancelled, line.qty_allocated, line.qty_backordered) == (10, 0, 0)
    assert inventory.stock_level(line.product_id, data.warehouses[0].id).available == 5
    assert db.session.query(Backorder).one().status == "cancelled"
    kinds = [m.kind for m in db.session.query(InventoryMovement).order_by(InventoryMovement.id)]
    assert kinds[-1] == "release"
    assert inventory.ledger_discrepancies() == []


def test_cancelling_a_line_of_a_partly_shipped_order(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data)
    first, second = order.lines
    fulfillment.ship(
        order, SETUP, warehouse_id=data.warehouses[0].id, lines={first.id: 10}, carrier="DHL"
    )
    with pytest.raises(ConflictError):
        changes.cancel_order(order, SETUP, "customer_request")
    changes.cancel_line(second, SETUP, "stock")
    assert (second.qty_cancelled, order.status) == (4, "shipped")
    with pytest.raises(ConflictError):
        changes.cancel_line(second, SETUP, "stock")


# -- returns -------------------------------------------------------------------------------


def test_return_restocks_good_units_and_scraps_the_rest(clean_db) -> None:
    data = make_catalog()
    order = _allocated(data, (10,))
    line = order.lines[0]
    main = data.warehouses[0].id
    fulfillment.ship(order, SETUP, warehouse_id=main, lines={line.id: 10}, carrier="DHL")
    with pytest.raises(ValidationFailed):
        returns.request_return(order, SETUP, lines={line.id: 11}, reason="x", warehouse_id=main)
    with pytest.raises(PermissionDenied):
        returns.request_return(
            order, actor("auditor"), lines={line.id: 1}, reason="x", warehouse_id=main
        )
    good = returns.request_return(
        order, actor("specialist"), lines={line.id: 3}, reason="wrong size", warehouse_id=main
    )
    bad = returns.request_return(
        order, actor("specialist"), lines={line.id: 2}, reason="damaged", warehouse_id=main
    )
    with pytest.raises(ValidationFailed):  # 5 of 10 already on open RMAs
        returns.request_return(order, SETUP, lines={line.id: 6}, reason="x", warehouse_id=main)
    with pytest.raises(ConflictError):
        returns.receive(good, SETUP, {good.lines[0].id: (3, "restock")})
    for rma, condition in ((good, "restock"), (bad, "scrap")):
        returns.authorize(rma, SETUP)
        returns.receive(rma, SETUP, {rma.lines[0].id: (rma.lines[0].quantity, condition)})
        returns.close(rma, SETUP)
        assert rma.status == "closed"
    assert line.qty_returned == 5
    assert inventory.stock_level(line.product_id, main).on_hand == 90 + 3
    assert inventory.ledger_discrepancies() == []


def test_credit_exposure_counts_open_invoices(clean_db) -> None:
    from portal.services import invoices

    data = make_catalog()
    catalog.customers.update(data.customer, {"credit_limit": Decimal("150.00")}, SETUP)
    first = _allocated(data, (10,))  # 10 × 9.50 = 95.00
    shipment = fulfillment.ship(
        first,
        SETUP,
        warehouse_id=data.warehouses[0].id,
        lines={first.lines[0].id: 10},
        carrier="DHL",
    )
    fulfillment.deliver(shipment, SETUP)
    invoice = invoices.invoice_shipment(shipment, SETUP)
    assert invoices.open_balance_for_customer(data.customer.id) == invoice.total
    second = _order(data, (10,), customer_po="PO-2")
    assert "exceeds credit limit USD 150.00" in _fails(second, "credit_exposure")
