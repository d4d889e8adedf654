"""``sales_order``: create with lines (honouring ``Idempotency-Key``) and the lifecycle actions
``confirm``, ``allocate``, ``cancel``, ``amend``, ``release``, ``convert``, ``approve_price``.

Each action is one service call run through the action pipeline; the actions are
:mod:`portal.actions.sales_orders`'s.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, Response, current_app, request, session
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.const import API_RESULT_RES_KEY, API_SELECT_COLUMNS_RIS_KEY, PERMISSION_PREFIX
from flask_appbuilder.security.decorators import permission_name
from flask_appbuilder.security.sqla.models import User
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_jwt_extended.view_decorators import _decode_jwt_from_request
from jwt import PyJWTError
from marshmallow import ValidationError
from sqlalchemy import Select, bindparam, select
from werkzeug.exceptions import BadRequest

import portal.security as security
from portal.actions import perform, valid_id
from portal.actions.sales_orders import (
    ALLOCATE,
    AMEND,
    APPROVE_PRICE,
    BULK,
    CANCEL,
    CONFIRM,
    CONVERT,
    RELEASE,
)
from portal.actions.schemas import OrderLineInput
from portal.actors import current_actor
from portal.api.base import READ_ONLY_ROUTES, json_body
from portal.api.order_entry import ENTRY_ACTIONS, OrderEntryRoutes, document_lines
from portal.auth import JWT_CLAIM, stamp_value
from portal.crud import new_values
from portal.extensions import db
from portal.models import Customer, SalesOrder, UserAuthState
from portal.services import idempotency, limits, orders, orders_bulk
from portal.services.base import Actor, ServiceError

ORDER_ACTIONS = {
    "confirm": "write",
    "allocate": "write",
    "cancel": "write",
    "amend": "write",
    "convert": "write",
    "release": "release",
    "approve_price": "override_price",
    "bulk": "write",
}


SHOW_ID = "ob_show_id"
SHOW_USER = "ob_show_user"


def show_statement(columns: list[str]) -> Select:
    """The REST show's one statement: the order's ``columns`` and its customer's name (the one
    related column it shows), by a bound id; nothing else joined."""
    own = [SalesOrder.__table__.c[name] for name in columns if "." not in name]
    return (
        select(*own, Customer.name.label("customer.name"))
        .outerjoin(Customer, Customer.id == SalesOrder.customer_id)
        .where(SalesOrder.id == bindparam(SHOW_ID))
    )


def signed_in_show_statement(columns: list[str]) -> Select:
    """The show's statement for a JWT client, the sign-in's checks in the same round trip:
    the user (active?) with their auth version and the permission stamp, and the order."""
    order = show_statement(columns)
    return (
        select(
            User.active.label("ob_user_active"),
            UserAuthState.auth_version.label("ob_auth_version"),
            stamp_value().label("ob_stamp"),
            *order.selected_columns,
        )
        .select_from(User)
        .outerjoin(UserAuthState, UserAuthState.user_id == User.id)
        .outerjoin(SalesOrder, SalesOrder.id == bindparam(SHOW_ID))
        .outerjoin(Customer, Customer.id == SalesOrder.customer_id)
        .where(User.id == bindparam(SHOW_USER))
    )


def jwt_user_id() -> tuple[int, Any] | None:
    """The user id and claims of the request's access token (a JWT in ``Authorization``, and
    no user signed in by the session or a remember-me cookie, whom FAB would check instead),
    verified as FAB's ``@protect`` verifies it (signature, expiry, type, the extension's own
    checks) except for revocation, which the caller checks; else None."""
    if session.get("_user_id") is not None:
        return None
    if current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies:
        return None
    if not request.headers.get(jwt_config.header_name, "").startswith("Bearer ey"):
        return None
    try:
        claims, _, _ = _decode_jwt_from_request(None, fresh=False, skip_revocation_check=True)
        return int(claims[jwt_config.identity_claim_key]), claims
    except (JWTExtendedException, PyJWTError, KeyError, TypeError, ValueError):
        return None


def shown_record(row: Any) -> SimpleNamespace:
    """A show statement's row as the object the show schema dumps (``customer.name`` nested,
    ``customer`` None for an order without one)."""
    values = {key: value for key, value in row._mapping.items() if not key.startswith("ob_")}
    name = values.pop("customer.name")
    customer = SimpleNamespace(name=name) if values.get("customer_id") is not None else None
    return SimpleNamespace(**values, customer=customer)


class SalesOrderApi(OrderEntryRoutes):
    resource_name = "sales_order"
    service = orders.orders
    class_permission_name = security.ORDERS
    method_permission_name = {**security.METHOD_PERMISSIONS, **ORDER_ACTIONS, **ENTRY_ACTIONS}
    include_route_methods = READ_ONLY_ROUTES | {"post", "put", *ORDER_ACTIONS, *ENTRY_ACTIONS}
    list_columns = [
        "id",
        "number",
        "customer_id",
        "customer_po",
        "order_date",
        "requested_date",
        "promised_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "currency",
        "status",
        "hold_reasons",
        "revision",
        "version",
        "external_ref",
        "customer.name",
        "total",
    ]
    show_columns = [*list_columns, "notes", "created_at", "updated_at"]
    show_columns += ["source", "ship_date", "delivered_date", "ship_mode", "ship_to_text"]
    add_columns = [
        "customer_id",
        "customer_po",
        "requested_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "notes",
    ]
    edit_columns = [
        "customer_po",
        "requested_date",
        "promised_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "notes",
        "version",
    ]
    order_columns = ["id", "number", "order_date", "requested_date", "status", "total"]
    keyset_ties = {"status": ("order_date",)}  # status + date, paged by key

    def __init__(self) -> None:
        super().__init__()
        self._show = show_statement(self.show_columns)
        self._signed_in_show = signed_in_show_statement(self.show_columns)

    def create_blueprint(self, appbuilder: AppBuilder, *args: Any, **kwargs: Any) -> Blueprint:
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.before_request(self.show_for_jwt)
        return blueprint

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        document_lines(self.add_model_schema)

    def get_headless(self, pk: Any, **kwargs: Any) -> Response:
        """The order as FAB's show answers it, read by one lean statement (its columns and the
        customer's name) instead of FAB's record query (issue 18). A ``q`` (keys, columns)
        goes FAB's way."""
        if kwargs.get("rison") or self._base_filters.filters or not valid_id(pk):
            return super().get_headless(pk, **kwargs)
        row = db.session.execute(self._show, {SHOW_ID: pk}).first()
        if row is None:
            return self.response_404()
        return self._show_answer(pk, row)

    def show_for_jwt(self) -> Response | None:
        """``before_request``: a show (no ``q``) asked with a JWT, answered in one statement
        that reads the user, their auth version, the permission stamp and the order
        (issue 18): the answer FAB's route gives when the token is valid, not revoked, its
        user active and allowed to read orders, and the order exists. Anything else (no or
        another credential, any refusal, a missing order) returns None and the request goes
        FAB's way (``@protect``), which answers it with its own 401, 403 or 404."""
        if request.method != "GET" or request.endpoint != f"{self.endpoint}.get":
            return None
        pk = (request.view_args or {}).get("pk")
        if request.args or not valid_id(pk) or self._base_filters.filters:
            return None
        signed_in = jwt_user_id()
        if signed_in is None:
            return None
        user_id, claims = signed_in
        row = db.session.execute(self._signed_in_show, {SHOW_ID: pk, SHOW_USER: user_id}).first()
        if row is None or not row.ob_user_active or row.id is None:
            return None
        if claims.get(JWT_CLAIM) != (row.ob_auth_version or 0):  # revoked since (auth.py)
            return None
        sm = self.appbuilder.sm
        pairs = sm.permission_cache.get(db.session, user_id, row.ob_stamp, sm.auth_role_public)
        read = f"{PERMISSION_PREFIX}{self.method_permission_name['get']}"
        if read not in self.base_permissions or (read, self.class_permission_name) not in pairs:
            return None
        return self._show_answer(pk, row)

    def _show_answer(self, pk: int, row: Any) -> Response:
        """FAB's show answer for the order of a show statement's ``row``."""
        response: dict[str, Any] = {}
        self.set_response_key_mappings(response, self.get, {}, **{API_SELECT_COLUMNS_RIS_KEY: []})
        response["id"] = pk
        response[API_RESULT_RES_KEY] = self.show_model_schema.dump(shown_record(row))
        self.pre_get(response)
        return self.response(200, **response)

    def post_headless(self) -> Response:
        """Create an order with its ``lines``; a repeated ``Idempotency-Key`` replays."""
        try:
            body = json_body(required=True)
        except BadRequest as error:
            return self.response_400(message=error.description)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return self.run_action(self._create_action(), body=body)
        if len(key) > 100:
            return self.response_400(message="Idempotency-Key is longer than 100 characters")
        actor = current_actor("api")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        try:
            claim = idempotency.claim(key, actor.user_id, "sales_order.post", fingerprint)
        except ServiceError as error:
            return self.service_error(error)
        if claim.replay is not None:
            status, payload = claim.replay
            return self.response(status, **payload)
        response = self.run_action(self._create_action(), body=body)
        if response.status_code < 300:
            idempotency.complete(claim, response.status_code, response.get_json())
        else:
            idempotency.release(claim)
        return response

    @expose("/bulk", methods=["POST"])
    @protect()
    @safe
    @permission_name("bulk")
    def bulk(self):
        """Create up to MAX_BULK_ITEMS orders with their lines in one request; one result per
        item (201 with id and number, or 422 with its errors); honours ``Idempotency-Key``.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [orders]
                  properties:
                    orders: {type: array, items: {type: object}}
          responses:
            200: {description: One result per item, in order}
            400: {$ref: '#/components/responses/400'}
            422: {$ref: '#/components/responses/422'}
        """
        try:
            body = json_body(required=True)
        except BadRequest as error:
            return self.response_400(message=error.description)
        key = request.headers.get("Idempotency-Key", "").strip()
        claim = None
        if key:
            if len(key) > 100:
                return self.response_400(message="Idempotency-Key is longer than 100 characters")
            fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            try:
                claim = idempotency.claim(
                    key, current_actor("api").user_id, "sales_order.bulk", fingerprint
                )
            except ServiceError as error:
                return self.service_error(error)
            if claim.replay is not None:
                status, payload = claim.replay
                return self.response(status, **payload)
        outcome = perform(BULK, None, lambda: body, "api")
        if not outcome.ok:
            if claim is not None:
                idempotency.release(claim)
            return self.response(outcome.status, **outcome.error)
        results = [orders_bulk.result_of(item) for item in outcome.result]
        payload = {
            "created": sum(result["status"] == 201 for result in results),
            "refused": sum(result["status"] != 201 for result in results),
            "results": results,
        }
        if claim is not None:
            idempotency.complete(claim, 200, payload)
        return self.response(200, **payload)

    def _create(self, _: None, actor: Actor, body: dict[str, Any]) -> SalesOrder:
        body = dict(body)
        raw_lines = body.pop("lines", [])
        if not isinstance(raw_lines, list):
            raise ValidationError({"lines": ["must be a list"]})
        limits.check_line_count(len(raw_lines))  # before any per-line work
        lines = OrderLineInput(many=True).load(raw_lines)
        item = self.add_model_schema.load(body)
        return orders.orders.create_with_lines(new_values(item), lines, actor)

    @expose("/<int:pk>/confirm", methods=["POST"])
    @protect()
    @safe
    @permission_name("confirm")
    def confirm(self, pk: int):
        """Run the validation checklist: confirmed, or on hold with the reasons.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The order, confirmed or on hold}
            404: {$ref: '#/components/responses/404'}
            409: {description: Not a draft}
        """
        return self.run_action(CONFIRM, pk)

    @expose("/<int:pk>/allocate", methods=["POST"])
    @protect()
    @safe
    @permission_name("allocate")
    def allocate(self, pk: int):
        """Allocate stock in warehouse priority order; the rest is backordered.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The order with its new status}
            409: {description: The order is not confirmed}
        """
        return self.run_action(ALLOCATE, pk)

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @safe
    @permission_name("cancel")
    def cancel(self, pk: int):
        """Cancel the order (or one line with ``line_id``), releasing allocations.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [reason_code]
                  properties:
                    reason_code: {type: string}
                    note: {type: string}
                    line_id: {type: integer}
          responses:
            200: {description: The order}
            409: {description: Already shipped or cancelled}
            422: {$ref: '#/components/responses/422'}
        """
        return self.run_action(CANCEL, pk)

    @expose("/<int:pk>/amend", methods=["POST"])
    @protect()
    @safe
    @permission_name("amend")
    def amend(self, pk: int):
        """Amend a confirmed order as a new revision (reason required).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [reason]
                  properties:
                    reason: {type: string}
                    version: {type: integer}
                    header: {type: object}
                    quantities:
                      type: object
                      additionalProperties: {type: integer}
          responses:
            200: {description: The amended order}
            409: {description: Stale version or not amendable}
            422: {$ref: '#/components/responses/422'}
        """
        return self.run_action(AMEND, pk)

    @expose("/<int:pk>/release", methods=["POST"])
    @protect()
    @safe
    @permission_name("release")
    def release(self, pk: int):
        """Supervisor: release a hold, confirming the order (reason required).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, required: [reason], properties: {reason: {type: string}}}
          responses:
            200: {description: The confirmed order}
            409: {description: Not on hold}
        """
        return self.run_action(RELEASE, pk)

    @expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    @permission_name("convert")
    def convert(self, pk: int):
        """Turn a quote into a draft order.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The draft order}
            409: {description: Not a quote}
        """
        return self.run_action(CONVERT, pk)

    @expose("/<int:pk>/approve_price", methods=["POST"])
    @protect()
    @safe
    @permission_name("approve_price")
    def approve_price(self, pk: int):
        """Supervisor: accept a line's price that differs from the price list.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [line_id, reason]
                  properties: {line_id: {type: integer}, reason: {type: string}}
          responses:
            200: {description: The order}
        """
        return self.run_action(APPROVE_PRICE, pk)
