"""Base classes of the REST resources: shared permissions, strict schemas, service writes.

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

import portal.security as security
from portal.actors import current_actor
from portal.crud import new_values, pending_changes
from portal.extensions import db
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
