"""The action pipeline (portal/actions/) behind every REST write and the HTML forms.

For a representative action of each resource: a body that is not a JSON object is 400, an
unknown or out-of-range id 404, a line of another record 404, a bad field 422 naming it, an
illegal state 409 with nothing written, a denied role 403 with the denial audited; and a
refused action leaves the session clean for the next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, g, get_flashed_messages
from sqlalchemy import select

from portal.actions import Action, perform
from portal.actions.sales_orders import CANCEL
from portal.extensions import appbuilder, db
from portal.models import (
    AuditEvent,
    CreditMemo,
    Customer,
    Dispute,
    Invoice,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
)
from portal.services import credits, disputes, invoices, orders, returns
from portal.services.base import ConflictError
from portal.views.base import run_form_action
from tests.conftest import actor, api_headers
from tests.factories import SETUP, make_catalog
from tests.test_finance import shipped_order

MODELS = {
    "sales_order": SalesOrder,
    "shipment": Shipment,
    "return_authorization": ReturnAuthorization,
    "invoice": Invoice,
    "credit_memo": CreditMemo,
    "dispute": Dispute,
    "customer": Customer,
}


@dataclass
class World:
    app: Flask
    ids: dict[str, int]  # a record of each resource
    other_order: SalesOrder  # an order whose lines belong to no one else here
    draft: SalesOrder

    def url(self, resource: str, action: str | None, pk: Any = None) -> str:
        pk = self.ids[resource] if pk is None else pk
        return f"/api/v1/{resource}/{pk}" + (f"/{action}" if action else "")

    def headers(self, who: str = "specialist") -> dict[str, str]:
        return api_headers(self.app, who)


@pytest.fixture
def world(clean_db: Flask) -> World:
    data = make_catalog()
    lines = [{"product_id": data.products[0].id, "quantity": 2}]
    header = {"customer_id": data.customer.id, "ship_to_id": data.customer.addresses[0].id}
    draft = orders.orders.create_with_lines({**header, "customer_po": "PO-A"}, lines, SETUP)
    other = orders.orders.create_with_lines({**header, "customer_po": "PO-B"}, lines, SETUP)
    order, shipment = shipped_order(data, (1, 7))
    clerk = actor("specialist")
    invoice = invoices.invoice_shipment(shipment, clerk)
    memo = credits.request_credit(invoice, clerk, reason_code="pricing_error", amount="1.00")
    dispute = disputes.open_dispute(invoice, clerk, dispute_type="shortage", amount="1.00")
    rma = returns.request_return(
        order,
        clerk,
        lines={order.lines[0].id: 1},
        reason="damaged",
        warehouse_id=data.warehouses[0].id,
    )
    ids = {
        "sales_order": draft.id,
        "shipment": shipment.id,
        "return_authorization": rma.id,
        "invoice": invoice.id,
        "credit_memo": memo.id,
        "dispute": dispute.id,
        "customer": data.customer.id,
    }
    return World(clean_db, ids, other, draft)


# One representative action per resource: (resource, action or None for PUT, a valid body,
# a user allowed to run it).
ACTIONS = [
    ("sales_order", "cancel", {"reason_code": "customer_request"}, "specialist"),
    ("shipment", "deliver", {}, "specialist"),
    ("return_authorization", "authorize", {}, "supervisor"),
    ("invoice", "void", {"reason": "typo"}, "specialist"),
    ("credit_memo", "approve", {}, "supervisor"),
    ("dispute", "investigate", {}, "specialist"),
    ("customer", None, {"name": "Acme plc"}, "admin"),
]


def _send(world: World, resource: str, action: str | None, who: str = "specialist", **kw: Any):
    client = world.app.test_client()
    method = client.post if action else client.put
    return method(
        kw.pop("url", None) or world.url(resource, action), headers=world.headers(who), **kw
    )


def _version(model: type, pk: int) -> int:
    db.session.expire_all()
    return db.session.get(model, pk).version


def _writes() -> int:
    """Audit events other than refusals: every write adds at least one."""
    return db.session.scalar(
        select(db.func.count()).select_from(AuditEvent).where(~AuditEvent.action.like("%_refused"))
    )


def _refusals(entity: str, entity_id: Any, action: str) -> list[AuditEvent]:
    db.session.expire_all()
    id_match = (
        AuditEvent.entity_id.is_(None)
        if entity_id is None
        else AuditEvent.entity_id == str(entity_id)
    )
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.entity == entity, id_match, AuditEvent.action == f"{action}_refused"
            )
        )
    )


def test_a_body_that_is_not_a_json_object_is_400(world: World) -> None:
    bodies = [
        ({"data": "reason=typo", "content_type": "application/x-www-form-urlencoded"}, "not JSON"),
        ({"data": '{"reason": ', "content_type": "application/json"}, "not valid JSON"),
        ({"json": ["reason", "typo"]}, "JSON object"),
    ]
    for resource, action, _, who in ACTIONS:
        for kwargs, message in bodies:
            response = _send(world, resource, action, who, **kwargs)
            assert response.status_code == 400, (resource, kwargs, response.json)
            assert message in response.json["message"], (resource, response.json)


def test_unknown_and_out_of_range_ids_are_404(world: World) -> None:
    for resource, action, body, who in ACTIONS:
        for pk in (999999, 2**31, 2**63, 0):
            url = world.url(resource, action, pk)
            response = _send(world, resource, action, who, url=url, json=body)
            assert response.status_code == 404, (resource, pk, response.json)
    generate = world.app.test_client().post(
        "/api/v1/invoice/generate", json={"order_id": 999999}, headers=world.headers()
    )
    assert generate.status_code == 404, generate.json


def test_a_line_of_another_order_is_404_and_changes_nothing(world: World) -> None:
    foreign = world.other_order.lines[0].id
    version = _version(SalesOrder, world.draft.id)
    writes = _writes()
    lifecycle_urls = [
        ("cancel", {"reason_code": "customer_request", "line_id": foreign}, "specialist"),
        ("cancel", {"reason_code": "customer_request", "line_id": 999999}, "specialist"),
        ("amend", {"reason": "more", "quantities": {str(foreign): 4}}, "specialist"),
        ("approve_price", {"line_id": foreign, "reason": "deal"}, "supervisor"),
    ]
    for action, body, who in lifecycle_urls:
        response = _send(world, "sales_order", action, who=who, json=body)
        assert response.status_code == 404, (action, body, response.json)
        assert "is not on" in response.json["message"], response.json
    rma_id = world.ids["return_authorization"]
    client = world.app.test_client()
    client.post(world.url("return_authorization", "authorize"), headers=world.headers("supervisor"))
    received = client.post(
        world.url("return_authorization", "receive"),
        json={"lines": [{"return_line_id": 999999, "quantity": 1, "condition": "scrap"}]},
        headers=world.headers(),
    )
    assert received.status_code == 404, received.json
    assert _version(SalesOrder, world.draft.id) == version
    assert _writes() == writes + 1  # the authorization only
    assert db.session.get(ReturnAuthorization, rma_id).status == "authorized"


def test_a_bad_field_is_422_naming_the_field(world: World) -> None:
    cases = [
        ("sales_order", "cancel", {"reason_code": "whim"}, "reason_code"),
        ("shipment", "deliver", {"delivered_date": "soon"}, "delivered_date"),
        ("return_authorization", "authorize", {"sneaky": 1}, "sneaky", "supervisor"),
        ("invoice", "void", {}, "reason"),
        ("credit_memo", "approve", {"note": 5}, "note", "supervisor"),
        ("dispute", "resolve", {"root_cause": "x"}, "corrective_action"),
        ("customer", None, {"credit_limit": "lots"}, "credit_limit", "admin"),
    ]
    writes = _writes()
    for resource, action, body, field, *who in cases:
        response = _send(world, resource, action, *who, json=body)
        assert response.status_code == 422, (resource, response.json)
        assert field in str(response.json["message"]), (resource, response.json)
    assert _writes() == writes


def test_an_illegal_state_is_409_and_writes_nothing(world: World) -> None:
    client = world.app.test_client()
    specialist, supervisor = world.headers(), world.headers("supervisor")
    # Bring some records into a state from which the action is illegal.
    assert client.post(world.url("shipment", "deliver"), headers=specialist).status_code == 200
    assert client.post(world.url("credit_memo", "approve"), headers=supervisor).status_code == 200
    cases = [
        ("sales_order", "allocate", {}, specialist),  # a draft is not confirmed
        ("shipment", "deliver", {}, specialist),  # already delivered
        ("return_authorization", "close", {}, specialist),  # not received
        ("invoice", "issue", {}, specialist),  # already issued
        ("credit_memo", "approve", {}, world.headers("supervisor2")),  # already approved
        (
            "dispute",
            "resolve",
            {"root_cause": "picking_error", "corrective_action": "x"},
            supervisor,  # the specialist opened it: only a Supervisor may resolve it
        ),
    ]
    for resource, action, body, headers in cases:
        model, pk = MODELS[resource], world.ids[resource]
        version, writes = _version(model, pk), _writes()
        response = client.post(world.url(resource, action), json=body, headers=headers)
        assert response.status_code == 409, (resource, action, response.json)
        assert response.json["message"], response.json
        assert _version(model, pk) == version, (resource, action)
        assert _writes() == writes, (resource, action)


def test_a_denied_role_is_403_and_the_denial_is_audited(world: World) -> None:
    cases = [
        ("sales_order", "confirm", {}, "auditor"),
        ("sales_order", "release", {"reason": "ok"}, "specialist"),
        ("shipment", "deliver", {}, "auditor"),
        ("return_authorization", "authorize", {}, "auditor"),
        ("invoice", "void", {"reason": "x"}, "auditor"),
        ("credit_memo", "approve", {}, "specialist"),
        ("dispute", "investigate", {}, "auditor"),
        ("customer", None, {"name": "x"}, "auditor"),
    ]
    for resource, action, body, who in cases:
        version = _version(MODELS[resource], world.ids[resource])
        response = _send(world, resource, action, who=who, json=body)
        assert response.status_code == 403, (resource, action, who, response.json)
        refusals = _refusals(resource, world.ids[resource], action or "update")
        assert [event.actor for event in refusals] == [who], (resource, action)
        assert _version(MODELS[resource], world.ids[resource]) == version
    created = world.app.test_client().post(
        "/api/v1/sales_order/", json={"lines": []}, headers=world.headers("auditor")
    )
    assert created.status_code == 403
    assert [event.actor for event in _refusals("sales_order", None, "create")] == ["auditor"]
    # A refusal the service audits itself (segregation of duties) is audited once.
    memo = db.session.get(CreditMemo, world.ids["credit_memo"])
    own = credits.request_credit(
        memo.invoice, actor("supervisor"), reason_code="pricing_error", amount=Decimal("1.00")
    )
    response = _send(
        world,
        "credit_memo",
        "approve",
        who="supervisor",
        url=f"/api/v1/credit_memo/{own.id}/approve",
    )
    assert response.status_code == 403 and "segregation" in response.json["message"]
    assert len(_refusals("credit_memo", own.id, "approve")) == 1


def test_after_each_kind_of_refusal_the_next_request_works(world: World) -> None:
    client, headers = world.app.test_client(), world.headers()
    foreign = world.other_order.lines[0].id
    refusals = [
        ("cancel", {"reason_code": "other", "line_id": foreign}, 404),  # the pipeline
        ("cancel", {"reason_code": "whim"}, 422),  # the schema
        ("allocate", {}, 409),  # the service: a draft is not confirmed
        ("release", {"reason": "ok"}, 403),  # FAB: a Specialist may not release holds
    ]
    for action, body, status in refusals:
        response = client.post(world.url("sales_order", action), json=body, headers=headers)
        assert response.status_code == status, (action, response.json)
        cancelled = client.post(
            world.url("sales_order", "cancel"),
            json={"reason_code": "other", "line_id": world.draft.lines[0].id},
            headers=headers,
        )
        assert cancelled.status_code in (200, 409), cancelled.json  # 409: line already cancelled
    assert _version(SalesOrder, world.draft.id) > 1


def test_a_refusal_rolls_back_whatever_the_action_touched(world: World) -> None:
    """A service refusing mid-way leaves nothing behind for the session's next commit."""

    def touch_then_refuse(order: SalesOrder, actor: Any, body: dict[str, Any]) -> None:
        order.notes = "half done"
        raise ConflictError("refused mid-way")

    action = Action("touch", SalesOrder, touch_then_refuse)
    try:
        with world.app.test_request_context(method="POST"):
            _as("specialist")
            outcome = perform(action, world.draft.id, dict, "api")
            assert (outcome.status, outcome.message) == (409, "refused mid-way")
            db.session.commit()  # whatever the same session writes next
    finally:
        g.pop("user", None)
    assert _version(SalesOrder, world.draft.id) == 1
    assert db.session.get(SalesOrder, world.draft.id).notes is None


def _as(username: str) -> None:
    g.user = appbuilder.sm.find_user(username=username)


def test_the_html_forms_run_the_same_pipeline(world: World) -> None:
    app, order_id = world.app, world.draft.id
    try:
        with app.test_request_context(method="POST", data={"reason_code": "whim", "note": ""}):
            _as("specialist")
            outcome = run_form_action(CANCEL, order_id, lambda o: "cancelled")
            assert (outcome.ok, outcome.status, outcome.result) == (False, 422, None)
            assert "Reason: Must be one of" in outcome.message
            assert get_flashed_messages(with_categories=True) == [("danger", outcome.message)]
        with app.test_request_context(method="POST", data={"reason_code": "other"}):
            _as("auditor")  # the service refuses it: audited by the pipeline
            outcome = run_form_action(CANCEL, order_id, lambda o: "cancelled")
            assert outcome.status == 403 and "may not" in outcome.message
            assert [e.actor for e in _refusals("sales_order", order_id, "cancel")] == ["auditor"]
        with app.test_request_context(method="POST", data={"reason_code": "other", "note": " "}):
            _as("specialist")
            outcome = run_form_action(CANCEL, order_id, lambda order: f"{order.number} cancelled")
            assert outcome.ok and outcome.result.status == "cancelled"
            message = f"{outcome.result.number} cancelled"
            assert get_flashed_messages(with_categories=True) == [("success", message)]
    finally:
        g.pop("user", None)
