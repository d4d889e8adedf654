"""Money and dates people enter: too many decimal places are refused (never rounded), and
dates outside a sane window are refused, each with a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import CreditMemo, Dispute, Payment
from portal.services import catalog, credits, disputes, fulfillment, payments
from portal.services.base import ValidationFailed
from portal.services.bounds import date_problem, places_problem
from tests.conftest import actor, api_headers
from tests.factories import SETUP, make_catalog
from tests.test_finance import issued_invoice, shipped_order

TODAY = datetime.now(UTC).date()


@pytest.fixture
def world(clean_db):
    app: Flask = clean_db
    data = make_catalog()
    invoice = issued_invoice((1, 7), data=data)
    return SimpleNamespace(
        app=app,
        data=data,
        client=app.test_client(),
        clerk=api_headers(app, "specialist"),
        admin=api_headers(app, "admin"),
        invoice=invoice,
    )


def _refused(response, field: str, words: str) -> None:
    assert response.status_code == 422, response.json
    assert words in " ".join(response.json["errors"][field]), response.json


# -- decimal places ---------------------------------------------------------------------------


def test_the_rule_counts_places_without_rounding() -> None:
    assert places_problem(Decimal("0.004")) == "at most 2 decimal places"
    assert places_problem(Decimal("0.125")) == "at most 2 decimal places"
    assert places_problem(Decimal("12.50")) is None
    assert places_problem(Decimal("12.5000")) is None  # trailing zeros are not places
    assert places_problem(Decimal("1.23456"), 4) == "at most 4 decimal places"


@pytest.mark.parametrize("amount", ["0.004", 0.004])
def test_a_dispute_of_0_004_is_refused_not_stored_as_zero(world, amount) -> None:
    response = world.client.post(
        "/api/v1/dispute/",
        json={"invoice_id": world.invoice.id, "dispute_type": "pricing", "amount": amount},
        headers=world.clerk,
    )
    _refused(response, "amount", "at most 2 decimal places")
    assert db.session.query(Dispute).count() == 0


@pytest.mark.parametrize("amount", ["0.125", 0.125])
def test_a_payment_of_0_125_is_refused_not_rounded_to_0_12(world, amount) -> None:
    response = world.client.post(
        "/api/v1/payment/",
        json={"invoice_id": world.invoice.id, "amount": amount},
        headers=world.clerk,
    )
    _refused(response, "amount", "at most 2 decimal places")
    assert db.session.query(Payment).count() == 0
    with pytest.raises(ValidationFailed, match="amount: at most 2 decimal places"):
        payments.record_payment(world.invoice, actor("specialist"), amount=Decimal("0.125"))


def test_credit_memo_and_dispute_credit_amounts_keep_to_cents(world) -> None:
    response = world.client.post(
        "/api/v1/credit_memo/",
        json={"invoice_id": world.invoice.id, "reason_code": "goodwill", "amount": "10.001"},
        headers=world.clerk,
    )
    _refused(response, "amount", "at most 2 decimal places")
    dispute = disputes.open_dispute(  # opened by someone else: the clerk may resolve it
        world.invoice, actor("specialist2"), dispute_type="pricing", amount="5.00"
    )
    disputes.investigate(dispute, actor("specialist2"))
    resolved = world.client.post(
        f"/api/v1/dispute/{dispute.id}/resolve",
        json={
            "root_cause": "price_list_error",
            "corrective_action": "fixed",
            "credit_amount": 0.125,
        },
        headers=world.clerk,
    )
    _refused(resolved, "amount", "at most 2 decimal places")
    edited = world.client.put(
        f"/api/v1/dispute/{dispute.id}", json={"amount": "1.999"}, headers=world.clerk
    )
    _refused(edited, "amount", "at most 2 decimal places")
    assert db.session.query(CreditMemo).count() == 0
    with pytest.raises(ValidationFailed, match="at most 2 decimal places"):
        credits.request_credit(
            world.invoice, actor("specialist"), reason_code="goodwill", amount="0.001"
        )


def test_credit_limits_and_prices_keep_to_their_columns_places(world) -> None:
    data = world.data
    customer = world.client.put(
        f"/api/v1/customer/{data.customer.id}",
        json={"credit_limit": "1000.005"},
        headers=world.admin,
    )
    _refused(customer, "credit_limit", "at most 2 decimal places")
    # Unit prices are stored with four places (PRICE = Numeric(14, 4)): a fifth is refused.
    product = world.client.put(
        f"/api/v1/product/{data.products[0].id}",
        json={"list_price": "9.12345"},
        headers=world.admin,
    )
    _refused(product, "list_price", "at most 4 decimal places")
    order = world.client.post(
        "/api/v1/sales_order/",
        json={
            "customer_id": data.customer.id,
            "lines": [{"product_id": data.products[0].id, "quantity": 1, "unit_price": "1.00001"}],
        },
        headers=world.clerk,
    )
    _refused(order, "unit_price", "at most 4 decimal places")
    with pytest.raises(ValidationFailed, match="unit_price: at most 4 decimal places"):
        catalog.price_list_items.create(
            {
                "price_list_id": catalog.price_lists.create(
                    {"name": "P", "currency": "USD"}, SETUP
                ).id,
                "product_id": data.products[0].id,
                "min_quantity": 1,
                "unit_price": Decimal("2.123456"),
            },
            SETUP,
        )


# -- dates ------------------------------------------------------------------------------------


def test_the_date_windows() -> None:
    today = date(2026, 6, 1)
    assert date_problem("received_on", date(1, 1, 1), today) is not None
    assert date_problem("received_on", date(1999, 12, 31), today) is not None
    assert date_problem("received_on", date(2000, 1, 1), today) is None
    assert date_problem("received_on", date(2026, 6, 2), today) is None  # time-zone tolerance
    assert date_problem("received_on", date(2026, 6, 3), today) is not None
    assert date_problem("requested_date", date(2031, 6, 1), today) is None
    assert date_problem("requested_date", date(2031, 6, 2), today) is not None


@pytest.mark.parametrize("received_on", ["0001-01-01", "9999-12-31"])
def test_a_payment_dated_year_1_or_9999_is_refused(world, received_on) -> None:
    response = world.client.post(
        "/api/v1/payment/",
        json={"invoice_id": world.invoice.id, "amount": "1.00", "received_on": received_on},
        headers=world.clerk,
    )
    _refused(response, "received_on", "must be between 2000-01-01 and")
    assert db.session.query(Payment).count() == 0
    tomorrow = TODAY + timedelta(days=1)
    paid = world.client.post(
        "/api/v1/payment/",
        json={"invoice_id": world.invoice.id, "amount": "1.00", "received_on": str(tomorrow)},
        headers=world.clerk,
    )
    assert paid.status_code == 201, paid.json


@pytest.mark.parametrize("requested", ["0001-01-01", "9999-12-31"])
def test_order_dates_outside_the_window_are_refused(world, requested) -> None:
    data = world.data
    created = world.client.post(
        "/api/v1/sales_order/",
        json={"customer_id": data.customer.id, "requested_date": requested},
        headers=world.clerk,
    )
    _refused(created, "requested_date", "must be between 2000-01-01 and")


def test_shipment_and_delivery_dates_outside_the_window_are_refused(clean_db) -> None:
    data = make_catalog()
    _, shipment = shipped_order(data, (2,))
    with pytest.raises(ValidationFailed, match="delivered_date: must be between"):
        fulfillment.deliver(shipment, SETUP, date(1999, 12, 31))
    with pytest.raises(ValidationFailed, match="eta: must be between"):
        fulfillment.update_shipment(shipment, {"eta": date(9999, 12, 31)}, SETUP)
    fulfillment.deliver(shipment, SETUP, TODAY)
    assert shipment.delivered_date == TODAY
