"""Order entry on the REST API: a draft's lines (POST, PATCH, DELETE), price override requests
and their decisions, the checks, and the entry page's price-and-stock answer."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.models import AuditEvent, OrderLine, SalesOrder, utcnow
from portal.services import catalog, lifecycle, orders
from tests.conftest import api_headers
from tests.factories import SETUP, Catalog, make_catalog


def trade_prices(data: Catalog) -> None:
    """Product 1 costs 9.00, 8.00 from 10, 7.25 from 50 on the customer's price list."""
    price_list = catalog.price_lists.create({"name": "Trade"}, SETUP)
    for min_qty, price in ((1, "9.00"), (10, "8.00"), (50, "7.25")):
        catalog.price_list_items.create(
            {
                "price_list_id": price_list.id,
                "product_id": data.products[0].id,
                "min_quantity": min_qty,
                "unit_price": Decimal(price),
            },
            SETUP,
        )
    catalog.customers.update(data.customer, {"price_list_id": price_list.id}, SETUP)


def draft(data: Catalog, quantity: int = 5, po: str = "PO-ENTRY") -> SalesOrder:
    return orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": po,
            "requested_date": utcnow().date() + timedelta(days=30),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": quantity}],
        SETUP,
    )


@pytest.fixture
def entry(clean_db):
    data = make_catalog()
    trade_prices(data)
    return clean_db, data, draft(data)


def _client(app, user: str = "specialist"):
    client = app.test_client()
    headers = api_headers(app, user)
    return lambda method, path, **kw: client.open(path, method=method, headers=headers, **kw)


def test_lines_are_added_changed_across_breaks_and_removed_with_audit(entry) -> None:
    app, data, order = entry
    call = _client(app)
    added = call(
        "POST",
        f"/api/v1/sales_order/{order.id}/lines",
        json={"product_id": data.products[0].id, "quantity": 12},
    )
    assert added.status_code == 201, added.json
    assert [(line["quantity"], line["unit_price"]) for line in added.json["lines"]] == [
        (5, "9.0000"),
        (12, "8.0000"),
    ]
    new = added.json["lines"][1]
    changed = call(
        "PATCH",
        f"/api/v1/sales_order/{order.id}/lines/{new['id']}",
        json={"quantity": 60, "version": new["version"]},
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["lines"][1]["unit_price"] == "7.2500"  # re-priced at the 50 break
    removed = call("DELETE", f"/api/v1/sales_order/{order.id}/lines/{new['id']}")
    assert removed.status_code == 200, removed.json
    assert [line["line_no"] for line in removed.json["lines"]] == [1]
    assert db.session.get(OrderLine, new["id"]) is None
    actions = [
        event.action
        for event in db.session.query(AuditEvent).filter_by(
            entity="order_line", entity_id=str(new["id"])
        )
    ]
    assert actions == ["create", "update", "delete"]


def test_a_stale_line_version_is_409_and_changes_nothing(entry) -> None:
    app, _, order = entry
    line = order.lines[0]
    call = _client(app)
    first = call(
        "PATCH",
        f"/api/v1/sales_order/{order.id}/lines/{line.id}",
        json={"quantity": 10, "version": line.version},
    )
    assert first.status_code == 200
    stale = call(
        "PATCH",
        f"/api/v1/sales_order/{order.id}/lines/{line.id}",
        json={"quantity": 20, "version": line.version},
    )
    assert stale.status_code == 409
    assert "changed by someone else" in stale.json["message"]
    gone = call("DELETE", f"/api/v1/sales_order/{order.id}/lines/{line.id}?version={line.version}")
    assert gone.status_code == 409
    db.session.expire_all()
    assert db.session.get(OrderLine, line.id).quantity == 10


def test_wrong_role_confirmed_order_and_bad_input_are_4xx_with_a_message(entry) -> None:
    app, data, order = entry
    line = order.lines[0]
    auditor = _client(app, "auditor")
    denied = auditor(
        "POST",
        f"/api/v1/sales_order/{order.id}/lines",
        json={"product_id": data.products[1].id, "quantity": 1},
    )
    assert denied.status_code == 403
    assert auditor("DELETE", f"/api/v1/sales_order/{order.id}/lines/{line.id}").status_code == 403
    assert db.session.query(AuditEvent).filter_by(action="add_line_refused").count() == 1
    call = _client(app)
    zero = call("PATCH", f"/api/v1/sales_order/{order.id}/lines/{line.id}", json={"quantity": 0})
    assert zero.status_code == 422 and "quantity" in zero.json["message"]
    other = draft(data, po="PO-OTHER")
    foreign = call("DELETE", f"/api/v1/sales_order/{order.id}/lines/{other.lines[0].id}")
    assert foreign.status_code == 404
    assert foreign.json["message"] == f"line {other.lines[0].id} is not on this order"
    missing = call(
        "POST", f"/api/v1/sales_order/{order.id}/lines", json={"product_id": 999999, "quantity": 1}
    )
    assert missing.status_code == 422 and "product_id" in missing.json["message"]
    not_json = call("POST", f"/api/v1/sales_order/{order.id}/lines", data="quantity=1")
    assert not_json.status_code == 400
    assert lifecycle.confirm(order, SETUP).status == "confirmed"
    late = call(
        "POST",
        f"/api/v1/sales_order/{order.id}/lines",
        json={"product_id": data.products[1].id, "quantity": 1},
    )
    assert late.status_code == 409
    assert "can't be added" in late.json["message"]


def test_lines_are_in_the_openapi_schema_of_create(entry) -> None:
    app, _, _ = entry
    spec = app.test_client().get("/api/v1/_openapi", headers=api_headers(app, "admin")).json
    post = spec["components"]["schemas"]["SalesOrderApi.post"]["properties"]
    assert post["lines"]["type"] == "array"
    item = post["lines"]["items"]
    if "$ref" in item:
        item = spec["components"]["schemas"][item["$ref"].rpartition("/")[2]]
    assert set(item["properties"]) >= {"product_id", "quantity", "unit_price"}
    assert "/api/v1/sales_order/{pk}/lines/{line_id}" in spec["paths"]


def test_a_price_override_is_requested_then_approved_by_a_supervisor(entry) -> None:
    app, _, order = entry
    line = order.lines[0]
    specialist, supervisor = _client(app), _client(app, "supervisor")
    asked = specialist(
        "POST",
        f"/api/v1/sales_order/{order.id}/lines/{line.id}/price_override",
        json={"unit_price": "8.10", "reason": "matching a competitor's quote"},
    )
    assert asked.status_code == 201, asked.json
    request_id = asked.json["id"]
    db.session.expire_all()
    assert db.session.get(OrderLine, line.id).unit_price == Decimal("9.00")  # not yet
    again = specialist(
        "POST",
        f"/api/v1/sales_order/{order.id}/lines/{line.id}/price_override",
        json={"unit_price": "8.00", "reason": "again"},
    )
    assert again.status_code == 409
    assert (
        specialist(
            "POST", f"/api/v1/price_override_request/{request_id}/approve", json={"reason": "ok"}
        ).status_code
        == 403
    )
    no_reason = supervisor("POST", f"/api/v1/price_override_request/{request_id}/approve", json={})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["message"]
    stale = supervisor(
        "POST",
        f"/api/v1/price_override_request/{request_id}/approve",
        json={"reason": "ok", "version": 7},
    )
    assert stale.status_code == 409
    approved = supervisor(
        "POST",
        f"/api/v1/price_override_request/{request_id}/approve",
        json={"reason": "key account"},
    )
    assert approved.status_code == 200, approved.json
    assert approved.json["result"]["status"] == "approved"
    db.session.expire_all()
    line = db.session.get(OrderLine, line.id)
    assert line.unit_price == Decimal("8.10") and line.price_override_by == "supervisor"
    twice = supervisor(
        "POST", f"/api/v1/price_override_request/{request_id}/reject", json={"reason": "no"}
    )
    assert twice.status_code == 409
    cheaper = specialist(
        "PATCH", f"/api/v1/sales_order/{order.id}/lines/{line.id}", json={"unit_price": "1.00"}
    )
    assert cheaper.json["lines"][0]["price_override_by"] is None  # approved 8.10, not 1.00
    specialist(
        "PATCH", f"/api/v1/sales_order/{order.id}/lines/{line.id}", json={"unit_price": "8.10"}
    )
    assert (
        supervisor(
            "POST",
            f"/api/v1/sales_order/{order.id}/approve_price",
            json={"line_id": line.id, "reason": "as agreed"},
        ).status_code
        == 200
    )
    lifecycle.confirm(db.session.get(SalesOrder, order.id), SETUP)
    checks = specialist("GET", f"/api/v1/sales_order/{order.id}/checks").json["result"]
    assert len(checks) == 9
    assert {c["name"]: c["passed"] for c in checks}["price"] is True
    events = db.session.query(AuditEvent).filter_by(entity="price_override_request").all()
    refused = [(e.action, json.loads(e.changes)["detail"]["status"]) for e in events[1:-1]]
    assert refused == [("approve_refused", 403), ("approve_refused", 409)]  # 409: stale version
    assert events[-1].action == "approve"  # the repeated reject (409) is not a refusal


def test_a_rejected_request_leaves_the_price_and_no_one_decides_their_own(entry) -> None:
    app, _, order = entry
    line = order.lines[0]
    supervisor = _client(app, "supervisor")
    asked = supervisor(
        "POST",
        f"/api/v1/sales_order/{order.id}/lines/{line.id}/price_override",
        json={"unit_price": "1.00", "reason": "friends and family"},
    )
    assert asked.status_code == 201
    own = supervisor(
        "POST",
        f"/api/v1/price_override_request/{asked.json['id']}/approve",
        json={"reason": "fine"},
    )
    assert own.status_code == 403 and "may not decide it" in own.json["message"]
    admin = _client(app, "admin")
    rejected = admin(
        "POST",
        f"/api/v1/price_override_request/{asked.json['id']}/reject",
        json={"reason": "below cost"},
    )
    assert rejected.status_code == 200
    assert rejected.json["result"]["decision_reason"] == "below cost"
    db.session.expire_all()
    assert db.session.get(OrderLine, line.id).unit_price == Decimal("9.00")


def test_quote_line_shows_the_applied_break_total_and_stock_per_warehouse(entry) -> None:
    app, data, _ = entry
    call = _client(app)
    product = data.products[0]
    found = call(
        "GET",
        f"/api/v1/sales_order/quote_line?customer_id={data.customer.id}&product_id={product.id}&quantity=1200",
    )
    assert found.status_code == 200, found.json
    quote = found.json["result"]
    assert quote["unit_price"] == "7.2500" and quote["price_break"] == 50
    assert quote["price_source"] == "Trade, from 50"
    assert quote["line_total_text"] == "USD 8,700.00"
    assert quote["warehouses"] == [
        {"code": "W1", "name": "Main", "available": 100},
        {"code": "W2", "name": "Overflow", "available": 0},
    ]
    assert quote["enough"] is False
    bad = call("GET", f"/api/v1/sales_order/quote_line?product_id={product.id}&quantity=0")
    assert (
        bad.status_code == 400 and bad.json["message"] == "quantity: must be a whole number above 0"
    )
    unknown = call("GET", "/api/v1/sales_order/quote_line?product_id=999999&quantity=1")
    assert unknown.status_code == 404
