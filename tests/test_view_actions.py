"""The HTML action forms run the action pipeline (portal/actions/), through the real routes.

A value that does not parse is a 422 naming its field, shown again on the form with the input
kept, and nothing is written; a line of another order is "not on this order" (back to the
order); an unknown id is the 404 page; an illegal state flashes the service's 409 and changes
nothing; a denial is audited once; a success goes back to the record with its message.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import (
    AuditEvent,
    CreditMemo,
    Dispute,
    OrderRevision,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
)
from portal.services import audit, credits, disputes, fulfillment, lifecycle, orders, returns
from portal.services.base import ConflictError
from tests.conftest import actor, login
from tests.factories import SETUP, Catalog, make_catalog
from tests.test_finance import issued_invoice, shipped_order


def _flashes(page: str) -> list[str]:
    found = re.findall(r"<div class=\"alert alert-[a-z]+\">(.*?)</div>", page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>|&times;|\s+", " ", item)).strip() for item in found]


def _flashed(client: FlaskClient) -> list[tuple[str, str]]:
    """What the last request flashed (and did not show yet): ``(category, message)``."""
    with client.session_transaction() as session:
        return list(session.pop("_flashes", []))


def _order(data: Catalog, quantity: int = 8) -> SalesOrder:
    return orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": f"PO-{datetime.now(UTC).timestamp()}",
            "requested_date": datetime.now(UTC).date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": quantity}],
        SETUP,
    )


def _allocated(data: Catalog) -> SalesOrder:
    order = _order(data)
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    return order


def _fresh(model: type, pk: int):
    db.session.expire_all()
    return db.session.get(model, pk)


@pytest.fixture
def data(clean_db: Flask) -> Catalog:
    return make_catalog()


@pytest.fixture
def specialist(clean_db: Flask) -> FlaskClient:
    return login(clean_db, "specialist")


def test_a_quantity_that_is_no_whole_number_is_named_kept_and_ships_nothing(
    data: Catalog, specialist: FlaskClient
) -> None:
    order = _allocated(data)
    line_id, version = order.lines[0].id, order.version
    page = specialist.post(
        f"/salesorderview/ship/{order.id}",
        data={
            "warehouse_id": str(data.warehouses[0].id),
            "carrier": "DHL",
            f"qty_{line_id}": "2.5",
            "eta": "someday",
        },
    )
    assert page.status_code == 422
    flashes = _flashes(page.text)
    assert any("Quantity of line 1: not a whole number" in f for f in flashes), flashes
    assert any("ETA: Not a valid date" in f for f in flashes), flashes  # every bad field at once
    assert 'value="DHL"' in page.text and 'value="2.5"' in page.text  # the input is kept
    assert db.session.query(Shipment).count() == 0
    assert _fresh(SalesOrder, order.id).version == version


def test_an_amendment_with_a_bad_quantity_is_named_kept_and_changes_nothing(
    data: Catalog, specialist: FlaskClient
) -> None:
    order = _order(data)
    lifecycle.confirm(order, SETUP)
    line_id, version = order.lines[0].id, order.version
    page = specialist.post(
        f"/salesorderview/amend/{order.id}",
        data={"reason": "more please", "version": str(version), f"qty_{line_id}": "ten"},
    )
    assert page.status_code == 422
    assert "Quantity of line 1: not a whole number" in " ".join(_flashes(page.text))
    assert 'value="more please"' in page.text and 'value="ten"' in page.text
    order = _fresh(SalesOrder, order.id)
    assert (order.version, order.revision, order.lines[0].quantity) == (version, 0, 8)
    assert db.session.query(OrderRevision).count() == 0


def test_a_line_of_another_order_is_not_on_this_order(
    data: Catalog, specialist: FlaskClient
) -> None:
    order, other = _allocated(data), _order(data)
    foreign, version = other.lines[0].id, order.version
    amended = specialist.post(
        f"/salesorderview/amend/{order.id}",
        data={"reason": "sneaky", "version": str(version), f"qty_{foreign}": "16"},
    )
    assert amended.status_code == 302
    assert amended.location.endswith(f"/salesorderview/show/{order.id}")
    assert _flashed(specialist) == [("danger", f"line {foreign} is not on this order")]
    shipped = specialist.post(
        f"/salesorderview/ship/{order.id}",
        data={"warehouse_id": str(data.warehouses[0].id), "carrier": "DHL", f"qty_{foreign}": "1"},
    )
    assert shipped.status_code == 302
    assert _flashed(specialist) == [("danger", f"line {foreign} is not on this order")]
    assert _fresh(SalesOrder, order.id).version == version
    assert _fresh(SalesOrder, other.id).lines[0].quantity == 8
    assert db.session.query(Shipment).count() == 0


def test_an_unknown_record_is_the_404_page(data: Catalog, specialist: FlaskClient) -> None:
    for url in ("salesorderview/confirm", "salesorderview/amend", "returnview/reject"):
        assert specialist.post(f"/{url}/999999", data={"reason": "x"}).status_code == 404
    assert specialist.get("/salesorderview/ship/999999").status_code == 404
    assert specialist.post("/disputeview/decide/999999", data={"note": "x"}).status_code == 404


def test_an_illegal_state_flashes_the_conflict_and_changes_nothing(
    data: Catalog, specialist: FlaskClient
) -> None:
    order = _order(data)  # a draft: not allocatable, not amendable
    version = order.version
    done = specialist.post(f"/salesorderview/allocate/{order.id}")
    assert done.location.endswith(f"/salesorderview/show/{order.id}")
    [(category, message)] = _flashed(specialist)
    assert category == "danger" and "can't be allocated" in message
    amended = specialist.post(
        f"/salesorderview/amend/{order.id}",
        data={"reason": "why not", f"qty_{order.lines[0].id}": "16"},
    )
    assert amended.location.endswith(f"/salesorderview/show/{order.id}")  # not the form again
    [(category, message)] = _flashed(specialist)
    assert category == "danger" and "can't be amended" in message
    order = _fresh(SalesOrder, order.id)
    assert (order.status, order.version, order.lines[0].quantity) == ("draft", version, 8)


def test_a_success_goes_back_to_the_record_with_its_message(
    data: Catalog, specialist: FlaskClient
) -> None:
    order = _order(data)
    done = specialist.post(f"/salesorderview/confirm/{order.id}")
    assert done.status_code == 302
    assert done.location.endswith(f"/salesorderview/show/{order.id}")
    [(category, message)] = _flashed(specialist)
    assert category == "success" and message.startswith(f"{order.number} confirmed")
    shipping = _allocated(data)
    shipped = specialist.post(
        f"/salesorderview/ship/{shipping.id}",
        data={
            "warehouse_id": str(data.warehouses[0].id),
            "carrier": "DHL",
            f"qty_{shipping.lines[0].id}": "8",
        },
    )
    assert shipped.location.endswith(f"/salesorderview/show/{shipping.id}")
    assert _flashed(specialist) == [("success", "shipment SH-000001 created")]


def test_receiving_a_return_parses_each_line(data: Catalog, specialist: FlaskClient) -> None:
    order, _ = shipped_order(data, (2,))
    rma = returns.request_return(
        order,
        actor("specialist"),
        lines={order.lines[0].id: 2},
        reason="broken",
        warehouse_id=data.warehouses[0].id,
    )
    returns.authorize(rma, actor("supervisor"))
    line_id = rma.lines[0].id
    # A refused input is shown again on the return's page, as typed, with the reason.
    typo = specialist.post(f"/returnview/receive/{rma.id}", data={f"qty_{line_id}": "two"})
    assert typo.status_code == 422
    assert "Quantity of line 1: not a whole number" in " ".join(_flashes(typo.text))
    assert f'name="qty_{line_id}" value="two"' in typo.text
    bare = specialist.post(f"/returnview/receive/{rma.id}", data={f"qty_{line_id}": "2"})
    assert "Condition of line 1: is required" in " ".join(_flashes(bare.text))
    assert _fresh(ReturnAuthorization, rma.id).status == "authorized"
    done = specialist.post(
        f"/returnview/receive/{rma.id}",
        data={f"qty_{line_id}": "2", f"condition_{line_id}": "restock"},
    )
    assert done.location.endswith(f"/returnview/show/{rma.id}")
    assert _flashed(specialist) == [("success", f"{rma.number} received")]
    assert _fresh(ReturnAuthorization, rma.id).status == "received"


def _refusals(memo: CreditMemo) -> list[AuditEvent]:
    return [e for e in audit.history("credit_memo", memo.id) if e.action.endswith("_refused")]


def test_a_specialist_posting_approve_is_refused_and_audited_once(clean_db: Flask) -> None:
    invoice = issued_invoice((1, 7))
    memo = credits.request_credit(
        invoice, actor("supervisor"), reason_code="pricing_error", amount=Decimal("5.00")
    )
    refused = login(clean_db, "specialist").post(f"/creditmemoview/approve/{memo.id}")
    assert refused.status_code == 403
    assert [(e.action, e.actor) for e in _refusals(memo)] == [("approve_refused", "specialist")]
    # The requester may approve credit memos but not this one: the service refuses (and
    # audits it); the pipeline does not audit it a second time.
    supervisor = login(clean_db, "supervisor")
    supervisor.post(f"/creditmemoview/approve/{memo.id}")
    [(category, message)] = _flashed(supervisor)
    assert category == "danger" and "segregation of duties" in message
    assert [e.actor for e in _refusals(memo)] == ["specialist", "supervisor"]
    memo = _fresh(CreditMemo, memo.id)
    assert (memo.status, memo.version) == ("requested", 1)


def test_rejecting_a_credit_or_a_dispute_needs_the_reason_in_the_note(clean_db: Flask) -> None:
    invoice = issued_invoice((1, 7))
    memo = credits.request_credit(
        invoice, actor("specialist"), reason_code="pricing_error", amount=Decimal("5.00")
    )
    supervisor = login(clean_db, "supervisor")
    supervisor.post(f"/creditmemoview/reject/{memo.id}")
    assert _flashed(supervisor) == [("danger", "Invalid input — Reason: give the reason")]
    supervisor.post(f"/creditmemoview/reject/{memo.id}", data={"note": "not agreed"})
    assert _flashed(supervisor) == [("success", f"{memo.number} rejected")]
    dispute = disputes.open_dispute(invoice, actor("specialist"), dispute_type="other", amount="1")
    page = supervisor.post(
        f"/disputeview/decide/{dispute.id}",
        data={"decision": "reject", "note": "no", "corrective_action": "Claim"},
    )
    assert page.status_code == 422
    assert "Corrective action: only when resolving" in " ".join(_flashes(page.text))
    assert ">Claim</textarea>" in page.text
    assert _fresh(Dispute, dispute.id).status == "open"


def test_a_refused_row_of_the_bulk_queue_leaves_nothing_half_done(
    clean_db: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline rolls a refused row back before the next row commits."""
    invoice = issued_invoice((1, 7))
    first, second = (
        credits.request_credit(
            invoice, actor("specialist"), reason_code="pricing_error", amount=Decimal(amount)
        )
        for amount in ("1.00", "2.00")
    )
    approve = credits.approve

    def half_done_then_refused(memo: CreditMemo, who, note=None):
        if memo.id == first.id:
            memo.reason_text = "half-done"
            raise ConflictError("refused mid-way")
        return approve(memo, who, note)

    monkeypatch.setattr(credits, "approve", half_done_then_refused)
    supervisor = login(clean_db, "supervisor")
    supervisor.post(
        "/creditapprovalview/action_post",
        data={"action": "approve", "rowid": [str(first.id), str(second.id)]},
    )
    assert _flashed(supervisor) == [
        ("danger", f"{first.number} not approved: refused mid-way"),
        ("success", f"Approved: {second.number}"),
    ]
    assert _fresh(CreditMemo, second.id).status == "approved"
    first = _fresh(CreditMemo, first.id)
    assert (first.status, first.reason_text) == ("requested", None)
