"""A decision taken twice — approve or reject of a credit memo, a price request or a return
that is already decided — answers 409 with a clear message in the API and a flash in the
browser, changes nothing, and is not audited as a refusal (nobody's permission was at stake).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from portal.extensions import db
from portal.models import (
    AuditEvent,
    CreditMemo,
    PriceOverrideRequest,
    ReturnAuthorization,
    utcnow,
)
from portal.services import credits, orders, price_overrides, returns
from tests.conftest import actor, api_headers, login
from tests.factories import Catalog, make_catalog
from tests.test_finance import issued_invoice, shipped_order


def _credit(data: Catalog) -> CreditMemo:
    invoice = issued_invoice(data=data)
    return credits.request_credit(
        invoice, actor("specialist"), reason_code="damaged", amount="2.00"
    )


def _price_request(data: Catalog) -> PriceOverrideRequest:
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": "PO-REPEAT",
            "requested_date": utcnow().date() + timedelta(days=30),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": 10}],
        actor("specialist"),
    )
    return price_overrides.request_price(
        order.lines[0], actor("specialist"), unit_price=Decimal("8.10"), reason="competitor"
    )


def _return(data: Catalog) -> ReturnAuthorization:
    order, _ = shipped_order(data, (2,))
    return returns.request_return(
        order, actor("specialist"), lines={order.lines[0].id: 1}, reason="dented", warehouse_id=1
    )


def _audit(entity: str, entity_id: int) -> list[str]:
    db.session.expire_all()
    return [
        event.action
        for event in db.session.query(AuditEvent)
        .filter(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
        .order_by(AuditEvent.id)
    ]


def _flashes(html: str) -> list[str]:
    found = re.findall(r'alert-danger">\s*<button[^>]*>[^<]*</button>\s*([^<]*)', html)
    return [text.strip() for text in found]


def test_a_decided_credit_memo_answers_409_and_no_refusal_is_audited(clean_db) -> None:
    memo = _credit(make_catalog(stock=100))
    client, headers = clean_db.test_client(), api_headers(clean_db, "supervisor")
    url = f"/api/v1/credit_memo/{memo.id}"
    assert client.post(f"{url}/approve", json={}, headers=headers).status_code == 200
    before = _audit("credit_memo", memo.id)
    again = client.post(f"{url}/approve", json={}, headers=headers)
    assert again.status_code == 409
    assert again.json["message"] == (
        f"credit memo {memo.number} was already approved by supervisor; nothing changed"
    )
    other = client.post(f"{url}/reject", json={"reason": "late"}, headers=headers)
    assert other.status_code == 409 and "already approved" in other.json["message"]
    browser = login(clean_db, "supervisor")
    page = browser.post(f"/creditmemoview/reject/{memo.id}", data={"note": "late"})
    assert page.status_code == 302
    shown = browser.get(page.location).text
    assert _flashes(shown) == [
        f"credit memo {memo.number} was already approved by supervisor; nothing changed"
    ]
    queue = browser.post(
        "/creditapprovalview/action_post",
        data={"action": "approve", "rowid": [str(memo.id)]},
        follow_redirects=True,
    )
    assert queue.status_code == 200
    assert f"{memo.number} not approved: credit memo {memo.number} was already" in queue.text
    assert _audit("credit_memo", memo.id) == before  # nothing refused, nothing changed
    assert db.session.get(CreditMemo, memo.id).status == "approved"


def test_a_decided_price_request_answers_409_and_no_refusal_is_audited(clean_db) -> None:
    request = _price_request(make_catalog(stock=0))
    client, headers = clean_db.test_client(), api_headers(clean_db, "supervisor")
    url = f"/api/v1/price_override_request/{request.id}"
    assert client.post(f"{url}/reject", json={"reason": "no"}, headers=headers).status_code == 200
    before = _audit("price_override_request", request.id)
    for verb in ("approve", "reject"):
        again = client.post(f"{url}/{verb}", json={"reason": "ok", "version": 1}, headers=headers)
        assert again.status_code == 409, again.json
        assert "was already rejected by supervisor; nothing changed" in again.json["message"]
    browser = login(clean_db, "supervisor")
    page = browser.post(f"/price-overrides/approve/{request.id}", data={"reason": "ok"})
    shown = browser.get(page.location).text
    assert any("was already rejected by supervisor" in text for text in _flashes(shown))
    assert _audit("price_override_request", request.id) == before
    assert db.session.get(PriceOverrideRequest, request.id).status == "rejected"


def test_a_decided_return_answers_409_and_no_refusal_is_audited(clean_db) -> None:
    rma = _return(make_catalog(stock=100))
    client, headers = clean_db.test_client(), api_headers(clean_db, "supervisor")
    url = f"/api/v1/return_authorization/{rma.id}"
    assert client.post(f"{url}/authorize", json={}, headers=headers).status_code == 200
    again = client.post(f"{url}/authorize", json={}, headers=headers)
    assert again.status_code == 409
    assert again.json["message"] == f"return {rma.number} was already authorized; nothing changed"
    assert client.post(f"{url}/reject", json={}, headers=headers).status_code == 200
    before = _audit("return_authorization", rma.id)
    twice = client.post(f"{url}/reject", json={}, headers=headers)
    assert twice.status_code == 409 and "already rejected" in twice.json["message"]
    browser = login(clean_db, "supervisor")
    page = browser.post(f"/returnview/authorize/{rma.id}")
    assert _flashes(browser.get(page.location).text) == [
        f"return {rma.number} was already rejected; nothing changed"
    ]
    assert _audit("return_authorization", rma.id) == before
    assert db.session.get(ReturnAuthorization, rma.id).status == "rejected"


def test_a_refused_permission_on_a_decided_record_is_still_audited(clean_db) -> None:
    """Only the repeat is spared: someone without the permission is refused and audited."""
    memo = _credit(make_catalog(stock=100))
    credits.approve(memo, actor("supervisor"))
    refused = clean_db.test_client().post(
        f"/api/v1/credit_memo/{memo.id}/approve",
        json={},
        headers=api_headers(clean_db, "specialist"),
    )
    assert refused.status_code == 403
    assert _audit("credit_memo", memo.id)[-1] == "approve_refused"
