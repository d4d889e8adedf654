"""``/api/v1/lookup/<kind>?q=…&limit=20``: the pickers' search-as-you-type (reads only).

One small resource per kind, each guarded by the permission to read that kind of record
(``customer`` and ``ship_to`` by ``can_read`` on customers, ``product`` on products,
``invoice`` on invoices, ``order`` on orders, ``warehouse`` on warehouses, ``tracker`` on
sync runs: whoever reads the runs sees their trackers' names), so the matrix test holds
them to the roles' declaration. The
matching itself is :func:`portal.services.lookups.lookup`: at most ``limit`` rows (1..50) in
one query. A bad argument is a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_appbuilder.api import BaseApi, expose, protect, safe

import portal.security as security
from portal.actions import valid_id
from portal.services import lookups
from portal.services.base import ServiceError

ROUTE_BASE = "/api/v1/lookup"
_DOC = """{summary}
        ---
        get:
          parameters:
          - {{in: query, name: q, schema: {{type: string, maxLength: 100}}}}
          - {{in: query, name: limit, schema: {{type: integer, minimum: 1, maximum: 50}}}}
          {extra}
          responses:
            200:
              description: Up to ``limit`` matches (``id``, ``label``, the kind's fields), more
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result: {{type: array, items: {{type: object}}}}
                      more: {{type: boolean}}
            400: {{$ref: '#/components/responses/400'}}
            401: {{$ref: '#/components/responses/401'}}
"""


def _int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 10 or (name != "limit" and not valid_id(raw)):
        raise _BadArgument(name, "must be a whole number")
    return int(raw)


def _flag_arg(name: str) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "false", "true"):
        raise _BadArgument(name, "must be 1 or 0 (true or false)")
    return raw in ("1", "true")


class _BadArgument(Exception):
    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name, self.problem = name, problem


class LookupApi(BaseApi):
    """The shared answer of a lookup resource; subclasses expose one kind each."""

    route_base = ROUTE_BASE
    resource_name = "lookup"
    allow_browser_login = True
    openapi_spec_tag = "Lookup"

    def answer(self, kind: str, **extra: Any) -> Response:
        try:
            limit = _int_arg("limit", lookups.DEFAULT_LIMIT)
            args: dict[str, Any] = {name: _int_arg(name) for name in extra.get("ints", ())}
            args.update({name: _flag_arg(name) for name in extra.get("flags", ())})
            found = lookups.lookup(kind, request.args.get("q", ""), limit or 0, **args)
        except _BadArgument as error:
            return self.response_400(message=str(error))
        except ServiceError as error:
            return self.response(400, **error.to_dict())
        return self.response(200, result=found.result, more=found.more)


class CustomerLookupApi(LookupApi):
    class_permission_name = security.CUSTOMERS
    method_permission_name = {"customer": "read", "ship_to": "read"}

    @expose("/customer", methods=["GET"])
    @protect()
    @safe
    def customer(self) -> Response:
        return self.answer("customer")

    customer.__doc__ = _DOC.format(
        summary="Customers whose code starts with, or name contains, q.", extra=""
    )

    @expose("/ship_to", methods=["GET"])
    @protect()
    @safe
    def ship_to(self) -> Response:
        return self.answer("ship_to", ints=("customer_id",))

    ship_to.__doc__ = _DOC.format(
        summary="The ship-to addresses of one customer (default first).",
        extra="- {in: query, name: customer_id, required: true, schema: {type: integer}}",
    )


class ProductLookupApi(LookupApi):
    class_permission_name = security.PRODUCTS
    method_permission_name = {"product": "read"}

    @expose("/product", methods=["GET"])
    @protect()
    @safe
    def product(self) -> Response:
        return self.answer("product", flags=("include_inactive",))

    product.__doc__ = _DOC.format(
        summary="Products whose SKU starts with, or name contains, q (active ones only unless"
        " include_inactive, as a list's filter asks).",
        extra="- {in: query, name: include_inactive, schema: {type: string, enum: ['0', '1',"
        " 'false', 'true']}}",
    )


class InvoiceLookupApi(LookupApi):
    class_permission_name = security.INVOICES
    method_permission_name = {"invoice": "read"}

    @expose("/invoice", methods=["GET"])
    @protect()
    @safe
    def invoice(self) -> Response:
        return self.answer("invoice")

    invoice.__doc__ = _DOC.format(
        summary="Issued invoices whose number starts with q, or whose customer matches it.",
        extra="",
    )


class OrderLookupApi(LookupApi):
    class_permission_name = security.ORDERS
    method_permission_name = {"order": "read"}

    @expose("/order", methods=["GET"])
    @protect()
    @safe
    def order(self) -> Response:
        return self.answer("order")

    order.__doc__ = _DOC.format(
        summary="Orders whose number starts with q (or its digits), or with the team's id q.",
        extra="",
    )


class WarehouseLookupApi(LookupApi):
    class_permission_name = security.WAREHOUSES
    method_permission_name = {"warehouse": "read"}

    @expose("/warehouse", methods=["GET"])
    @protect()
    @safe
    def warehouse(self) -> Response:
        return self.answer("warehouse")

    warehouse.__doc__ = _DOC.format(
        summary="Warehouses whose code starts with, or name contains, q.", extra=""
    )


class TrackerLookupApi(LookupApi):
    class_permission_name = security.SYNC_RUNS
    method_permission_name = {"tracker": "read"}

    @expose("/tracker", methods=["GET"])
    @protect()
    @safe
    def tracker(self) -> Response:
        return self.answer("tracker")

    tracker.__doc__ = _DOC.format(summary="Trackers whose name contains q.", extra="")


LOOKUP_APIS = (
    CustomerLookupApi,
    ProductLookupApi,
    InvoiceLookupApi,
    OrderLookupApi,
    WarehouseLookupApi,
    TrackerLookupApi,
)
