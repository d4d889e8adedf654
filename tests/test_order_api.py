"""Order lifecycle over the REST API: creation with lines, idempotency, actions, resources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import SalesOrder
from tests.conftest import api_headers
from tests.factories import make_catalog

IN_TWO_WEEKS = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()


@pytest.fixture
def api(clean_db):
    app: Flask = clean_db
    data = make_catalog()
    client = app.test_client()
    headers = api_headers(app, "specialist")
    order_body = {
        "customer_id": data.customer.id,
        "customer_po": "PO-API-1",
        "requested_date": IN_TWO_WEEKS,
        "ship_to_id": data.customer.addresses[0].id,
        "lines": [
            {"product_id": data.products[0].id, "quantity": 10},
            {"product_id": data.products[1].id, "quantity": 3},
        ],
    }
    return SimpleNamespace(app=app, client=client, headers=headers, data=data, body=order_body)


def test_create_confirm_allocate_ship_deliver_over_the_api(api) -> None:
    client, headers, data, body = api.client, api.headers, api.data, api.body
    created = client.post("/api/v1/sales_order/", json=body, headers=headers)
    assert created.status_code == 201, created.json
    order_id = created.json["id"]
    assert created.json["result"]["status"] == "draft"
    confirmed = client.post(f"/api/v1/sales_order/{order_id}/confirm", headers=headers)
    assert confirmed.status_code == 200 and confirmed.json["result"]["status"] == "confirmed"
    allocated = client.post(f"/api/v1/sales_order/{order_id}/allocate", headers=headers)
    assert allocated.json["result"]["status"] == "allocated"
    lines = client.get(
        f"/api/v1/order_line/?q=(filters:!((col:order_id,opr:eq,value:{order_id})))",
        headers=headers,
    ).json["result"]
    shipped = client.post(
        "/api/v1/shipment/",
        json={
            "order_id": order_id,
            "warehouse_id": data.warehouses[0].id,
            "carrier": "DHL",
            "tracking_number": "T-1",
            "lines": [
                {"order_line_id": line["id"], "quantity": line["quantity"]} for line in lines
            ],
        },
        headers=headers,
    )
    assert shipped.status_code == 201, shipped.json
    shipment_id = shipped.json["id"]
    delivered = client.post(f"/api/v1/shipment/{shipment_id}/deliver", json={}, headers=headers)
    assert delivered.json["result"]["status"] == "delivered"
    order = client.get(f"/api/v1/sales_order/{order_id}", headers=headers).json["result"]
    assert order["status"] == "delivered"
    notes = client.get("/api/v1/notification/", headers=headers).json["result"]
    assert {n["event"] for n in notes} == {"confirmed", "shipped", "delivered"}


def test_idempotency_key_returns_the_first_result_and_never_a_second_order(api) -> None:
    client, headers, _data, body = api.client, api.headers, api.data, api.body
    keyed = {**headers, "Idempotency-Key": "order-7f3a"}
    first = client.post("/api/v1/sales_order/", json=body, headers=keyed)
    again = client.post("/api/v1/sales_order/", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json == again.json
    assert db.session.query(SalesOrder).count() == 1
    changed = client.post(
        "/api/v1/sales_order/", json={**body, "customer_po": "OTHER"}, headers=keyed
    )
    assert changed.status_code == 422 and "Idempotency-Key" in changed.json["errors"]
    assert db.session.query(SalesOrder).count() == 1


def test_a_failed_keyed_request_can_be_retried_once_fixed(api) -> None:
    client, headers, _data, body = api.client, api.headers, api.data, api.body
    keyed = {**headers, "Idempotency-Key": "retry-me"}
    bad = client.post(
        "/api/v1/sales_order/",
        json={**body, "lines": [{"product_id": 999999, "quantity": 1}]},
        headers=keyed,
    )
    assert bad.status_code == 422
    good = client.post("/api/v1/sales_order/", json=body, headers=keyed)
    assert good.status_code == 201


def test_bad_lines_are_field_level_422(api) -> None:
    client, headers, _data, body = api.client, api.headers, api.data, api.body
    for lines, field in (
        ([{"product_id": 1, "quantity": 2.5}], "quantity"),
        ([{"product_id": 1}], "quantity"),
        ("not a list", "lines"),
    ):
        response = client.post(
            "/api/v1/sales_order/", json={**body, "lines": lines}, headers=headers
        )
        assert response.status_code == 422, response.json
        assert field in str(response.json["message"])


def test_illegal_actions_are_409_and_change_nothing(api) -> None:
    client, headers, _data, body = api.client, api.headers, api.data, api.body
    order_id = client.post("/api/v1/sales_order/", json=body, headers=headers).json["id"]
    response = client.post(f"/api/v1/sales_order/{order_id}/allocate", headers=headers)
    assert response.status_code == 409 and "can't be allocated" in response.json["message"]
    response = client.post(
        f"/api/v1/sales_order/{order_id}/amend", json={"reason": "x"}, headers=headers
    )
    assert response.status_code == 409
    cancel = client.post(
        f"/api/v1/sales_order/{order_id}/cancel", json={"reason_code": "nope"}, headers=headers
    )
    assert cancel.status_code == 422 and "reason_code" in cancel.json["message"]
    assert (
        client.get(f"/api/v1/sales_order/{order_id}", headers=headers).json["result"]["status"]
        == "draft"
    )


def test_amend_with_a_stale_version_is_409(api) -> None:
    client, headers, _data, body = api.client, api.headers, api.data, api.body
    order_id = client.post("/api/v1/sales_order/", json=body, headers=headers).json["id"]
    client.post(f"/api/v1/sales_order/{order_id}/confirm", headers=headers)
    lines = client.get(
        f"/api/v1/order_line/?q=(filters:!((col:order_id,opr:eq,value:{order_id})))",
        headers=headers,
    ).json["result"]
    amend = {"reason": "customer asked", "quantities": {str(lines[0]["id"]): 20}, "version": 1}
    stale = client.post(f"/api/v1/sales_order/{order_id}/amend", json=amend, headers=headers)
    assert stale.status_code == 409 and "changed by someone else" in stale.json["message"]
    current = client.get(f"/api/v1/sales_order/{order_id}", headers=headers).json["result"]
    amend["version"] = current["version"]
    ok = client.post(f"/api/v1/sales_order/{order_id}/amend", json=amend, headers=headers)
    assert ok.status_code == 200 and ok.json["result"]["revision"] == 1


def test_release_is_for_supervisors_only(api) -> None:
    client, headers, _data, body = api.client, api.headers, api.data, api.body
    supervisor = api_headers(api.app, "supervisor")
    order_id = client.post(
        "/api/v1/sales_order/", json={**body, "ship_to_id": None}, headers=headers
    ).json["id"]
    held = client.post(f"/api/v1/sales_order/{order_id}/confirm", headers=headers)
    assert held.json["result"]["status"] == "on_hold"
    assert "ship_to" in held.json["result"]["hold_reasons"]
    denied = client.post(
        f"/api/v1/sales_order/{order_id}/release", json={"reason": "ok"}, headers=headers
    )
    assert denied.status_code == 403
    no_address = client.post(
        f"/api/v1/sales_order/{order_id}/release", json={"reason": "collect"}, headers=supervisor
    )
    assert no_address.status_code == 422
    assert no_address.json["message"].endswith("can't be released: no ship-to address")
    version = client.get(f"/api/v1/sales_order/{order_id}", headers=headers).json["result"]
    fixed = client.put(
        f"/api/v1/sales_order/{order_id}",
        json={"ship_to_id": body["ship_to_id"], "version": version["version"]},
        headers=headers,
    )
    assert fixed.status_code == 200, fixed.json
    released = client.post(
        f"/api/v1/sales_order/{order_id}/release", json={"reason": "collect"}, headers=supervisor
    )
    assert released.status_code == 200 and released.json["result"]["status"] == "confirmed"


def test_returns_over_the_api(api) -> None:
    client, headers, data, body = api.client, api.headers, api.data, api.body
    order_id = client.post("/api/v1/sales_order/", json=body, headers=headers).json["id"]
    client.post(f"/api/v1/sales_order/{order_id}/confirm", headers=headers)
    client.post(f"/api/v1/sales_order/{order_id}/allocate", headers=headers)
    line = client.get(
        f"/api/v1/order_line/?q=(filters:!((col:order_id,opr:eq,value:{order_id})))",
        headers=headers,
    ).json["result"][0]
    client.post(
        "/api/v1/shipment/",
        json={
            "order_id": order_id,
            "warehouse_id": data.warehouses[0].id,
            "carrier": "DHL",
            "lines": [{"order_line_id": line["id"], "quantity": 10}],
        },
        headers=headers,
    )
    rma = client.post(
        "/api/v1/return_authorization/",
        json={
            "order_id": order_id,
            "warehouse_id": data.warehouses[0].id,
            "reason": "damaged in transit",
            "lines": [{"order_line_id": line["id"], "quantity": 2}],
        },
        headers=headers,
    )
    assert rma.status_code == 201, rma.json
    rma_id = rma.json["id"]
    assert (
        client.post(
            f"/api/v1/return_authorization/{rma_id}/authorize",
            headers=api_headers(api.app, "supervisor"),
        ).json["result"]["status"]
        == "authorized"
    )
    from portal.models import ReturnLine

    return_line = db.session.query(ReturnLine).one()
    received = client.post(
        f"/api/v1/return_authorization/{rma_id}/receive",
        json={"lines": [{"return_line_id": return_line.id, "quantity": 2, "condition": "scrap"}]},
        headers=headers,
    )
    assert received.status_code == 200 and received.json["result"]["status"] == "received"
