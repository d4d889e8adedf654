"""REST resources under ``/api/v1`` (FAB ModelRestApi, OpenAPI at ``/api/v1/_openapi``).

Payloads are type-checked by the resource's marshmallow schema (field-level 422), then handed
to the record's service like every other write; service errors map to their HTTP status
(403, 404, 409, 422) with a message and field errors, never a 500.
"""

from __future__ import annotations

import sys
from typing import Any

from flask import request
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.sqla.interface import SQLAInterface
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.exc import DataError, StatementError
from werkzeug.exceptions import BadRequest

from portal import security
from portal.actors import current_actor
from portal.crud import new_values, pending_changes
from portal.extensions import appbuilder, db
from portal.models import AuditEvent, StockLevel
from portal.services import catalog, orders
from portal.services.base import RecordService, ServiceError

READ_ONLY_ROUTES = {"get", "get_list", "info"}
MAX_INT = 2**31 - 1  # SQL INTEGER: ids and quantities


def _valid_id(pk: Any) -> bool:
    try:
        return 1 <= int(pk) <= MAX_INT
    except (TypeError, ValueError):
        return False


def _harden(schema: Schema, model: type) -> None:
    """Make FAB's generated schema strict: whole-number ids and integers, in range.

    marshmallow-sqlalchemy leaves foreign-key columns as untyped ``Inferred`` fields and
    truncates 2.5 to 2 for integers; both would reach the service as garbage.
    """
    columns = model.__table__.columns
    for name, field in list(schema.load_fields.items()):
        column = columns.get(name)
        if column is None:
            continue
        if isinstance(field, fields.Inferred) or (
            isinstance(field, fields.Integer) and not isinstance(field, fields.Boolean)
        ):
            replacement = fields.Integer(
                strict=True,
                required=field.required,
                allow_none=column.nullable,
                validate=validate.Range(min=-MAX_INT, max=MAX_INT),
            )
            replacement._bind_to_schema(name, schema)
            schema.load_fields[name] = replacement
            schema.fields[name] = replacement


class ResourceApi(ModelRestApi):
    """Common settings of every resource: shared permissions, no deletes, JSON errors."""

    method_permission_name = security.METHOD_PERMISSIONS
    include_route_methods = READ_ONLY_ROUTES
    allow_browser_login = True
    max_page_size = 500
    page_size = 50

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        for schema in (self.add_model_schema, self.edit_model_schema):
            if isinstance(schema, Schema):
                _harden(schema, self.datamodel.obj)

    def get_headless(self, pk: Any, **kwargs: Any):
        if not _valid_id(pk):
            return self.response_404()
        return super().get_headless(pk, **kwargs)

    def response_500(self, message: str | None = None):
        """FAB's ``@safe`` turns any exception into a 500; a bad value in a query is a 400."""
        error = sys.exc_info()[1]
        if isinstance(error, OverflowError | DataError | StatementError):
            db.session.rollback()
            return self.response_400(
                message=f"A value is out of range or of the wrong type: {error}"
            )
        return super().response_500(message)

    def service_error(self, error: ServiceError):
        return self.response(error.status, **error.to_dict())


class ServiceResourceApi(ResourceApi):
    """A resource whose POST and PUT go through ``service``."""

    service: RecordService
    include_route_methods = READ_ONLY_ROUTES | {"post", "put"}

    def __init__(self) -> None:
        self.datamodel = SQLAInterface(self.service.model, db.session)
        super().__init__()

    def _json_body(self) -> dict[str, Any]:
        if not request.is_json:
            raise BadRequest("Request is not JSON (send Content-Type: application/json)")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        return body

    def post_headless(self):
        try:
            body = self._json_body()
            item = self.add_model_schema.load(body)
        except BadRequest as error:
            return self.response_400(message=error.description)
        except ValidationError as error:
            return self.response_422(message=error.messages)
        try:
            record = self.service.create(new_values(item), current_actor("api"))
        except ServiceError as error:
            return self.service_error(error)
        return self.response(
            201, result=self.show_model_schema.dump(record, many=False), id=record.id
        )

    def put_headless(self, pk: Any):
        record = self.datamodel.get(pk, self._base_filters) if _valid_id(pk) else None
        if record is None:
            return self.response_404()
        try:
            body = self._merge_update_item(record, self._json_body())
            self.edit_model_schema.load(body, instance=record)
        except BadRequest as error:
            db.session.rollback()
            return self.response_400(message=error.description)
        except ValidationError as error:
            db.session.rollback()
            return self.response_422(message=error.messages)
        changes, expected_version = pending_changes(record)
        try:
            self.service.update(record, changes, current_actor("api"), expected_version)
        except ServiceError as error:
            return self.service_error(error)
        return self.response(200, result=self.show_model_schema.dump(record, many=False))


class CustomerApi(ServiceResourceApi):
    resource_name = "customer"
    service = catalog.customers
    class_permission_name = security.CUSTOMERS
    list_columns = [
        "id",
        "code",
        "name",
        "email",
        "credit_limit",
        "credit_hold",
        "active",
        "currency",
        "payment_term_id",
        "price_list_id",
        "version",
    ]
    show_columns = [*list_columns, "phone", "created_at"]
    add_columns = [c for c in show_columns if c not in ("id", "version", "created_at")]
    edit_columns = [*add_columns, "version"]


class ProductApi(ServiceResourceApi):
    resource_name = "product"
    service = catalog.products
    class_permission_name = security.PRODUCTS
    list_columns = [
        "id",
        "sku",
        "name",
        "unit",
        "pack_size",
        "list_price",
        "lead_time_days",
        "active",
        "version",
    ]
    show_columns = list_columns
    add_columns = [c for c in list_columns if c not in ("id", "version")]
    edit_columns = [*add_columns, "version"]


class WarehouseApi(ServiceResourceApi):
    resource_name = "warehouse"
    service = catalog.warehouses
    class_permission_name = security.WAREHOUSES
    list_columns = ["id", "code", "name", "priority", "active", "version"]
    show_columns = list_columns
    add_columns = ["code", "name", "priority", "active"]
    edit_columns = [*add_columns, "version"]


class StockLevelApi(ResourceApi):
    resource_name = "stock_level"
    datamodel = SQLAInterface(StockLevel)
    class_permission_name = security.STOCK
    list_columns = [
        "id",
        "product_id",
        "warehouse_id",
        "on_hand",
        "allocated",
        "available",
        "reorder_point",
        "version",
    ]
    show_columns = list_columns
    order_columns = ["id", "product_id", "warehouse_id", "on_hand", "allocated"]


class SalesOrderApi(ServiceResourceApi):
    resource_name = "sales_order"
    service = orders.orders
    class_permission_name = security.ORDERS
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
    ]
    show_columns = [*list_columns, "notes", "created_at", "updated_at"]
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
    order_columns = ["id", "number", "order_date", "requested_date", "status"]


class OrderLineApi(ServiceResourceApi):
    resource_name = "order_line"
    service = orders.order_lines
    class_permission_name = security.ORDER_LINES
    include_route_methods = READ_ONLY_ROUTES | {"put"}
    list_columns = [
        "id",
        "order_id",
        "line_no",
        "product_id",
        "quantity",
        "unit_price",
        "list_price",
        "discount_pct",
        "qty_allocated",
        "qty_backordered",
        "qty_shipped",
        "qty_delivered",
        "qty_cancelled",
        "qty_returned",
        "version",
    ]
    show_columns = list_columns
    edit_columns = ["quantity", "unit_price", "discount_pct", "version"]
    order_columns = ["id", "order_id", "line_no", "product_id", "quantity"]


class AuditEventApi(ResourceApi):
    resource_name = "audit_event"
    datamodel = SQLAInterface(AuditEvent)
    class_permission_name = security.AUDIT
    list_columns = [
        "id",
        "occurred_at",
        "actor",
        "source",
        "entity",
        "entity_id",
        "action",
        "changes",
        "prev_hash",
        "hash",
    ]
    show_columns = list_columns
    order_columns = ["id", "occurred_at", "actor", "entity", "action"]
    base_order = ("id", "desc")


def register_apis() -> None:
    """Add every REST resource to the AppBuilder (called once per app)."""
    for api in (
        CustomerApi,
        ProductApi,
        WarehouseApi,
        StockLevelApi,
        SalesOrderApi,
        OrderLineApi,
        AuditEventApi,
    ):
        appbuilder.add_api(api)
