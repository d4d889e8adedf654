"""Base classes of the REST resources: shared permissions, strict schemas, the action pipeline.

Every write (POST, PUT and each action route) runs through :func:`portal.actions.perform`:
the record by id (404), the JSON body (:func:`json_body`, 400), the marshmallow schema (422
per field), then the record's service; service errors map to their HTTP status (403, 404,
409, 422) with a message and field errors, never a 500. Permission denials are audited: by
the pipeline when a service refuses, by :meth:`ResourceApi.response_403` when FAB does.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any

import jsonschema
import prison
from flask import Blueprint, Response, current_app, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import ModelRestApi, expose, safe
from flask_appbuilder.api.schemas import get_item_schema, get_list_schema
from flask_appbuilder.const import API_URI_RIS_KEY
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import get_locale
from marshmallow import Schema, fields, validate
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

import portal.paging as paging
import portal.security as security
from jobs.queue import QUEUE_UNAVAILABLE
from portal.actions import MAX_INT, Action, perform, record_route_denial, valid_id
from portal.actors import current_actor
from portal.crud import ShownInterface, new_values, pending_changes
from portal.extensions import db
from portal.inputguard import filter_value_problem
from portal.requestlimits import too_large
from portal.services.base import Actor, PermissionDenied, RecordService, ServiceError

log = logging.getLogger(__name__)

READ_ONLY_ROUTES = {"get", "get_list", "info"}
# the routes that read outside a transaction (:func:`read_without_transaction`): the reads
# of records (``info`` describes the resource)
READ_ROUTES = READ_ONLY_ROUTES - {"info"}
# The audited name of a route's action, where it differs from the route method's name.
ACTION_NAMES = {"post": "create", "put": "update", "reject_dispute": "reject"}


def json_body(required: bool = False) -> dict[str, Any]:
    """The request's JSON object; 400 if it is not JSON, malformed, or not an object.

    An empty body is ``{}`` unless ``required``.
    """
    if not required and not request.get_data():
        return {}
    if not request.is_json:
        raise BadRequest("Request is not JSON (send Content-Type: application/json)")
    try:
        body = request.get_json()
    except BadRequest as error:
        raise BadRequest("Request body is not valid JSON") from error
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


def _harden(schema: Schema, model: type) -> None:
    """Make FAB's generated schema strict: whole-number ids and integers, in range, and
    decimals exactly as sent.

    marshmallow-sqlalchemy leaves foreign-key columns as untyped ``Inferred`` fields,
    truncates 2.5 to 2 for integers and rounds a ``Numeric(14, 2)`` value to two places
    (0.125 became 0.12, 0.004 became 0.00); the service refuses what has too many places
    (``bounds.places_problem``), so the schema must hand it the value unrounded.
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
        elif isinstance(field, fields.Decimal) and field.places is not None:
            replacement = fields.Decimal(required=field.required, allow_none=column.nullable)
        else:
            continue
        replacement._bind_to_schema(name, schema)
        schema.load_fields[name] = replacement
        schema.fields[name] = replacement


# the filter operators whose value is a list (FAB iterates it)
LIST_OPERATORS = ("in", "not_in")


def list_arg_problems(model: type, args: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a list request's rison ``page`` and ``filters``, by parameter."""
    problems: dict[str, str] = {}
    page = args.get("page", 0)
    if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page <= MAX_INT:
        problems["page"] = f"must be a whole number from 0 to {MAX_INT}"
    for item in args.get("filters") or ():
        if isinstance(item, dict) and "col" in item and "value" in item:
            problem = filter_value_problem(model, str(item["col"]), item["value"])
            if item.get("opr") in LIST_OPERATORS and not isinstance(item["value"], list):
                problem = f"{item['opr']} takes a list of values, such as !(1,2)"
            if problem:
                problems[f"filters.{item['col']}"] = problem
    return problems


def rison(schema: dict[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """FAB's ``@rison(schema)`` (``q`` parsed into ``kwargs["rison"]``, 400 when it is not
    rison or JSON or breaks ``schema``), with the schema checked once, here, rather than on
    every request: ``jsonschema.validate`` checks the schema itself each call, which cost a
    REST list more than its query (issue 18). A ``q`` that breaks prison's parser in ways
    FAB does not catch (``(page:``, a ``TypeError``) is a 400 too, not a 500."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.check_schema(schema)

    def decorate(route: Callable[..., Any]) -> Callable[..., Any]:
        def parsed(self: ModelRestApi, *args: Any, **kwargs: Any) -> Response:
            value = request.args.get(API_URI_RIS_KEY)
            kwargs["rison"] = {}
            if value:
                try:
                    kwargs["rison"] = prison.loads(value)
                except Exception:  # prison also fails with TypeError (``(page:``): not rison
                    if not current_app.config.get("FAB_API_ALLOW_JSON_QS", True):
                        return self.response_400(message="Not a valid rison argument")
                    try:
                        text = urllib.parse.parse_qs(f"{API_URI_RIS_KEY}={value}")
                        kwargs["rison"] = json.loads(text[API_URI_RIS_KEY][0])
                    except Exception:  # FAB's own answer to anything unreadable
                        return self.response_400(message="Not a valid rison/json argument")
            try:  # raised, as jsonschema.validate would, so response_400 names the parameter
                error = jsonschema.exceptions.best_match(validator.iter_errors(kwargs["rison"]))
                if error is not None:
                    raise error
            except jsonschema.ValidationError as error:
                first_line = str(error).split("\n", 1)[0]
                return self.response_400(message=f"Not a valid rison schema {first_line}")
            return route(self, *args, **kwargs)

        return functools.update_wrapper(parsed, route)

    return decorate


def read_route(
    fab_route: Callable[..., Any], url: str, schema: dict[str, Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """FAB's read route ``fab_route`` as FAB declares it (URL, ``get`` permission, the keys
    of its answer, its OpenAPI text), with :func:`rison` checking ``q``."""

    def decorate(route: Callable[..., Any]) -> Callable[..., Any]:
        route._response_key_func_mappings = dict(fab_route._response_key_func_mappings)
        route.__doc__ = fab_route.__doc__
        checked = permission_name("get")(rison(schema)(route))
        return expose(url, methods=["GET"])(protect()(safe(checked)))

    return decorate


def read_without_transaction() -> None:
    """``before_request`` of each resource: a show or a list (GET) reads with the database
    connection in autocommit, so it costs no ``BEGIN`` and no ``ROLLBACK`` round trip around
    its one or two statements (issue 18). Nothing is written on these routes; a request that
    already read something (a personal API token is checked before this) keeps its
    transaction."""
    if request.method != "GET" or request.endpoint is None:
        return
    if request.endpoint.rpartition(".")[2] in READ_ROUTES and not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


class ResourceApi(ModelRestApi):
    """Common settings of every resource: shared permissions, no deletes, JSON errors."""

    method_permission_name = security.METHOD_PERMISSIONS
    include_route_methods = READ_ONLY_ROUTES
    allow_browser_login = True
    max_page_size = 500
    page_size = 50
    keyset_ties: dict[str, tuple[str, ...]] = {}

    def __init__(self) -> None:
        self._kept_labels: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        # paged lists, loading the columns they answer with, not the model's eager defaults
        model = self.datamodel
        if not isinstance(model, ShownInterface):
            self.datamodel = ShownInterface(model.obj, model.session)
        self.datamodel.keyset_ties = self.keyset_ties
        super().__init__()

    def create_blueprint(self, appbuilder: AppBuilder, *args: Any, **kwargs: Any) -> Blueprint:
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.before_request(read_without_transaction)
        return blueprint

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        for schema in (self.add_model_schema, self.edit_model_schema):
            if isinstance(schema, Schema):
                _harden(schema, self.datamodel.obj)

    @read_route(ModelRestApi.get, "/<int:pk>", get_item_schema)
    def get(self, pk: Any, **kwargs: Any) -> Response:
        return self.get_headless(pk, **kwargs)

    @read_route(ModelRestApi.get_list, "/", get_list_schema)
    def get_list(self, **kwargs: Any) -> Response:
        return self.get_list_headless(**kwargs)

    def _label_columns_json(self, cols: list[str] | None = None) -> dict[str, str]:
        """FAB's column labels of an answer, translated once per locale and column set
        rather than on every request."""
        key = (str(get_locale()), tuple(cols or ()))
        if key not in self._kept_labels:
            self._kept_labels[key] = super()._label_columns_json(cols)
        return dict(self._kept_labels[key])

    def get_headless(self, pk: Any, **kwargs: Any):
        if not valid_id(pk):
            return self.response_404()
        return super().get_headless(pk, **kwargs)

    def get_list_headless(self, **kwargs: Any) -> Response:
        """The list, after refusing page numbers and filter values no query can take.

        ``page`` must be a whole number from 0 to 2**31-1 (400 otherwise); ``page_size``
        outside 1..``max_page_size`` is clamped to ``max_page_size`` (FAB's rule); a filter
        value must suit its column (:func:`portal.inputguard.filter_value_problem`).
        """
        problems = list_arg_problems(self.datamodel.obj, kwargs.get("rison") or {})
        if problems:
            message = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
            return self.response(400, message=message, errors=problems)
        paging.ask_cursor(request.args.get("cursor"))
        return super().get_list_headless(**kwargs)

    def pre_get_list(self, data: dict[str, Any]) -> None:
        """The list's paging: whether ``count`` is the database's estimate, and the cursors
        of the next and previous pages (``?cursor=…``; null at either end)."""
        found = paging.last_page()
        data["count_is_estimate"] = bool(found and found.count.estimate)
        data["next"] = found.next if found else None
        data["previous"] = found.previous if found else None

    def response_400(self, message: str | None = None) -> Response:
        """FAB's 400s; a rison argument that breaks its schema names the parameter."""
        error = sys.exc_info()[1]
        if isinstance(error, jsonschema.ValidationError):
            where = ".".join(str(part) for part in error.absolute_path)
            message = f"q: {where + ': ' if where else ''}{error.message}"
        return super().response_400(message=message)

    def response_500(self, message: str | None = None):
        """FAB's ``@safe`` turns any exception into a 500. None of its text reaches the client
        (it is logged): a database's refusal of a value is a 400, the job queue down a 503."""
        error = sys.exc_info()[1]
        if isinstance(error, paging.CursorError):
            return self.response_400(message=str(error))
        if isinstance(error, RequestEntityTooLarge):  # a chunked body over MAX_CONTENT_LENGTH
            return too_large()
        if isinstance(error, RedisError):
            log.warning("job queue unavailable: %s", error)
            return self.response(503, message=QUEUE_UNAVAILABLE)
        if isinstance(error, OverflowError | SQLAlchemyError):
            db.session.rollback()
            log.warning("database refused a value of %s: %s", request.path, error)
            return self.response_400(message="A value is out of range or of the wrong type")
        return super().response_500("Internal error; it has been logged")

    def response_403(self) -> Response:
        """FAB refused the route for want of permission: audit a refused write, then 403."""
        if request.method != "GET":
            self._audit_denial()
        return super().response_403()

    def _audit_denial(self) -> None:
        try:
            actor: Actor = current_actor("api")
        except PermissionDenied:
            return
        method = (request.endpoint or "").rpartition(".")[2]
        pk = (request.view_args or {}).get("pk")
        record_route_denial(actor, self.datamodel.obj, pk, ACTION_NAMES.get(method, method))

    def service_error(self, error: ServiceError) -> Response:
        """A service's refusal outside an action (nothing of it stays in the session)."""
        db.session.rollback()
        return self.response(error.status, **error.to_dict())

    def run_action(
        self, action: Action, pk: Any = None, body: dict[str, Any] | None = None
    ) -> Response:
        """Run ``action`` through the pipeline on record ``pk`` with the request's JSON body
        (or ``body``, already read); the record or records it returns, dumped."""
        outcome = perform(
            action,
            pk,
            (lambda: body) if body is not None else (lambda: json_body(action.body_required)),
            "api",
        )
        if not outcome.ok:
            return self.response(outcome.status, **outcome.error)
        result = outcome.result
        if isinstance(result, list):
            return self.response(
                outcome.status,
                ids=[item.id for item in result],
                result=[self.show_model_schema.dump(item) for item in result],
            )
        extra = {"id": result.id} if outcome.status == 201 else {}
        return self.response(
            outcome.status, result=self.show_model_schema.dump(result, many=False), **extra
        )


class ServiceResourceApi(ResourceApi):
    """A resource whose POST and PUT go through ``service``."""

    service: RecordService
    include_route_methods = READ_ONLY_ROUTES | {"post", "put"}

    def __init__(self) -> None:
        self.datamodel = ShownInterface(self.service.model, db.session)
        super().__init__()

    def post_headless(self) -> Response:
        return self.run_action(self._create_action())

    def _create_action(self) -> Action:
        return Action(
            "create", self.service.model, self._create, schema=None, status=201, body_required=True
        )

    def _create(self, _: None, actor: Actor, body: dict[str, Any]) -> Any:
        return self.service.create(new_values(self.add_model_schema.load(body)), actor)

    def put_headless(self, pk: Any) -> Response:
        return self.run_action(
            Action("update", self.service.model, self._update, schema=None, body_required=True),
            pk,
        )

    def _update(self, record: Any, actor: Actor, body: dict[str, Any]) -> Any:
        self.edit_model_schema.load(self._merge_update_item(record, body), instance=record)
        changes, expected_version = pending_changes(record)
        return self.service.update(record, changes, actor, expected_version)
