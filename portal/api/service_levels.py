"""``improvement_action`` (the improvement log: POST, PUT, and ``start``, ``complete``,
``drop``, ``reopen``, ``measure``), ``report/weekly`` (the weekly order-health workbook of
``?week=2026-W47``, default the last complete week: Supervisors, Specialists, Auditors) and
``report/metrics`` (a metric's figures by period or dimension: Supervisors, Specialists)."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, request, send_file
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.security.decorators import permission_name

import portal.security as security
from portal.actions.service_levels import IMPROVEMENT_ACTIONS
from portal.actors import current_actor
from portal.api.base import ServiceResourceApi
from portal.extensions import db
from portal.services import improvements, weekly_report
from portal.services import service_levels as sl
from portal.services.base import ServiceError, ValidationFailed

ACTION_ROUTES = {name: "write" for name in IMPROVEMENT_ACTIONS}
MAX_WEEKS = 104
COLUMNS = [
    "id",
    "problem",
    "root_cause",
    "cause_source",
    "cause_code",
    "action",
    "owner",
    "due_date",
    "status",
    "metric",
    "value_before",
    "week_before",
    "value_after",
    "week_after",
    "created_by",
    "created_at",
    "closed_at",
    "version",
]


class ImprovementActionApi(ServiceResourceApi):
    resource_name = "improvement_action"
    service = improvements.improvements
    class_permission_name = security.IMPROVEMENTS
    method_permission_name = {**security.METHOD_PERMISSIONS, **ACTION_ROUTES}
    include_route_methods = ServiceResourceApi.include_route_methods | set(ACTION_ROUTES)
    list_columns = COLUMNS
    show_columns = COLUMNS
    add_columns = list(improvements.improvements.creatable)
    edit_columns = [*improvements.improvements.editable, "version"]
    order_columns = ["id", "due_date", "status", "created_at"]
    base_order = ("id", "desc")

    def _step(self, name: str, pk: int) -> Response:
        return self.run_action(IMPROVEMENT_ACTIONS[name], pk)

    @expose("/<int:pk>/start", methods=["POST"])
    @protect()
    @safe
    @permission_name("start")
    def start(self, pk: int):
        """Start work on an open action."""
        return self._step("start", pk)

    @expose("/<int:pk>/complete", methods=["POST"])
    @protect()
    @safe
    @permission_name("complete")
    def complete(self, pk: int):
        """Complete an action; its metric's value after is measured (the last complete week)."""
        return self._step("complete", pk)

    @expose("/<int:pk>/drop", methods=["POST"])
    @protect()
    @safe
    @permission_name("drop")
    def drop(self, pk: int):
        """Drop an action that will not be done."""
        return self._step("drop", pk)

    @expose("/<int:pk>/reopen", methods=["POST"])
    @protect()
    @safe
    @permission_name("reopen")
    def reopen(self, pk: int):
        """Reopen a done (back in progress) or dropped (back to open) action."""
        return self._step("reopen", pk)

    @expose("/<int:pk>/measure", methods=["POST"])
    @protect()
    @safe
    @permission_name("measure")
    def measure(self, pk: int):
        """Measure the action's metric again for the last complete week (its value after)."""
        return self._step("measure", pk)


class WeeklyReportApi(BaseApi):
    """``report/weekly`` (the workbook) and ``report/metrics`` (one metric's figures, by
    week, month, customer, product, warehouse or carrier)."""

    resource_name = "report"
    class_permission_name = security.SERVICE_LEVELS
    method_permission_name = {"weekly": "report", "metrics": "read"}
    allow_browser_login = True

    @expose("/weekly", methods=["GET"])
    @protect()
    @safe
    @permission_name("report")
    def weekly(self) -> Response:
        """The weekly order-health workbook (.xlsx) of ``week`` (ISO, e.g. 2026-W47).
        ---
        get:
          parameters:
          - {in: query, name: week, schema: {type: string, example: 2026-W47}}
          responses:
            200:
              description: The workbook
              content:
                application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: {}
            422: {description: Not an ISO week, or a week that has not started}
        """
        try:
            week = request.args.get("week")
            period = sl.parse_week(week) if week is not None else None
            made = weekly_report.make(current_actor("api"), "api", period)
        except ServiceError as error:
            db.session.rollback()
            return self.response(error.status, **error.to_dict())
        return send_file(
            weekly_report.io_of(made),
            mimetype=weekly_report.XLSX_TYPE,
            as_attachment=True,
            download_name=made.filename,
        )

    @expose("/metrics", methods=["GET"])
    @protect()
    @safe
    @permission_name("metrics")
    def metrics(self) -> Response:
        """One metric over an ISO week, or ``weeks`` weeks ending with it, per group of ``by``.
        ---
        get:
          parameters:
          - {in: query, name: metric, required: true, schema: {type: string, example: otif_order}}
          - {in: query, name: week, schema: {type: string, example: 2026-W47}}
          - {in: query, name: weeks, schema: {type: integer, minimum: 1, maximum: 104}}
          - in: query
            name: by
            schema: {type: string, enum: [week, month, customer, product, warehouse, carrier]}
          responses:
            200: {description: The figures}
            422: {description: An unknown metric, week, breakdown or number of weeks}
        """
        try:
            week = request.args.get("week")
            last = sl.parse_week(week) if week is not None else sl.last_complete_week()
            weeks = request.args.get("weeks", "1")
            if not weeks.isdigit() or not 1 <= int(weeks) <= MAX_WEEKS:
                raise ValidationFailed({"weeks": [f"a whole number from 1 to {MAX_WEEKS}"]})
            period = sl.Period(last.start - timedelta(days=7 * (int(weeks) - 1)), last.end)
            key, by = request.args.get("metric", ""), request.args.get("by") or None
            figures = sl.breakdown(key, period, by)
        except ServiceError as error:
            return self.response(error.status, **error.to_dict())
        metric = sl.METRICS[key]
        return self.response(
            200,
            metric=key,
            label=metric.label,
            kind=metric.kind,
            start=period.start.isoformat(),
            end=period.end.isoformat(),
            by=by,
            figures=figures,
        )
