"""``POST /api/v1/sales_order/bulk``: many orders with lines in one request, one result per
item, the team's own ids and past order dates kept, ``Idempotency-Key`` honoured."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import SalesOrder
from tests.conftest import api_headers
from tests.factories import make_catalog

URL = "/api/v1/sales_order/bulk"


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(SalesOrder))


def test_each_item_is_decided_on_its_own_and_the_good_ones_are_created(clean_db) -> None:
    data = make_catalog()
    customer, (first, second, _) = data.customer.id, [p.id for p in data.products]
    headers = api_headers(clean_db, "specialist")
    body = {
        "orders": [
            {
                "customer_id": customer,
                "external_ref": "TEAM-1001",
                "order_date": "2023-04-02",
                "lines": [{"product_id": first, "quantity": 2}],
            },
            {"customer_id": customer, "lines": [{"product_id": 999999, "quantity": 1}]},
            {"customer_id": customer, "lines": [{"product_id": first, "quantity": "x"}]},
            {"customer_id": customer, "external_ref": "TEAM-1001", "lines": []},
            {"customer_id": customer, "lines": [{"product_id": second, "quantity": 3}]},
        ]
    }
    answer = clean_db.test_client().post(URL, json=body, headers=headers)
    assert answer.status_code == 200, answer.json
    results = answer.json["results"]
    assert (answer.json["created"], answer.json["refused"]) == (2, 3)
    assert [result["status"] for result in results] == [201, 422, 422, 422, 201]
    assert results[1]["errors"] == {"product_id": ["does not exist"]}
    assert results[2]["errors"] == {"lines": {"0": {"quantity": ["Not a valid integer."]}}}
    assert results[3]["errors"] == {"external_ref": ["TEAM-1001 is already used"]}
    kept = db.session.get(SalesOrder, results[0]["id"])
    assert (kept.external_ref, kept.order_date.isoformat(), kept.number) == (
        "TEAM-1001",
        "2023-04-02",
        results[0]["number"],
    )
    assert _count() == 2


def test_a_repeated_idempotency_key_replays_and_creates_nothing_more(clean_db) -> None:
    data = make_catalog()
    headers = {**api_headers(clean_db, "specialist"), "Idempotency-Key": "bulk-1"}
    line = {"product_id": data.products[0].id, "quantity": 1}
    body = {"orders": [{"customer_id": data.customer.id, "lines": [line]}] * 3}
    client = clean_db.test_client()
    first = client.post(URL, json=body, headers=headers)
    again = client.post(URL, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and first.json["created"] == 3
    assert _count() == 3
    other = client.post(URL, json={"orders": body["orders"][:1]}, headers=headers)
    assert other.status_code == 422 and _count() == 3  # same key, another body


def test_too_many_or_no_orders_are_refused_before_any_work(clean_db) -> None:
    headers = api_headers(clean_db, "specialist")
    client = clean_db.test_client()
    many = client.post(URL, json={"orders": [{}] * 1001}, headers=headers)
    assert many.status_code == 422
    assert many.json["errors"] == {"orders": ["at most 1000 at once (1001 given)"]}
    empty = client.post(URL, json={"orders": []}, headers=headers)
    assert empty.status_code == 422
    assert empty.json["message"] == {"orders": ["must be a non-empty list of orders"]}
    auditor = client.post(URL, json={"orders": [{}]}, headers=api_headers(clean_db, "auditor"))
    assert auditor.status_code == 403
