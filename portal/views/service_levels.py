"""The Service levels page (Supervisors and Specialists), its drill-down to the orders behind
each figure, the targets form (Supervisors), the workbook download, and the improvement log.

Charts are inline SVG drawn here from the figures (``portal.views.charts``): nothing is
fetched from elsewhere and no script runs.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.actions.service_levels import IMPROVEMENT_ACTIONS, LOG_IMPROVEMENT, SET_TARGET
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import ImprovementAction, ServiceLevelTarget, utcnow
from portal.services import improvements, weekly_report
from portal.services import service_levels as sl
from portal.services.base import ServiceError
from portal.services.service_level_targets import Row, page, targets
from portal.services.service_levels_causes import SOURCES, cause_label, orders_for_cause
from portal.services.service_levels_days import Reading
from portal.views.base import (
    ServiceModelView,
    has_access_audited,
    keeps_input,
    record_action,
    run_form_action,
)
from portal.views.charts import ParetoBar, Point, line_chart, pareto_chart
from portal.views.formatting import money
from portal.views.receipts import _field_errors


def figure_text(metric: sl.Metric, value: Any) -> str:
    """A figure as the page shows it: 95.0 %, 3.5 days, USD 1,234.50 (money as every page
    shows it, :func:`portal.views.formatting.money`), 7."""
    if value is None:
        return "–"
    number = Decimal(str(value))
    if metric.kind == sl.RATE:
        return f"{number * 100:.1f} %"
    if metric.kind == sl.DAYS:
        return f"{number:.1f} days"
    if metric.kind == sl.MONEY:
        return money(number, metric.unit)
    return f"{number:,.0f}"


def target_text(metric: sl.Metric, number: Decimal) -> str:
    """A target as typed in the form: a rate as a percentage (95%), else the number."""
    if metric.kind == sl.RATE:
        return f"{format((number * 100).normalize(), 'f')}%"
    return format(number.normalize(), "f")


def change_text(row: Row) -> str:
    change = row.change
    if change is None:
        return "no change to compare"
    if change == 0:
        return "same as last week"
    arrow = "▲" if change > 0 else "▼"
    size = figure_text(row.metric, abs(change))
    if row.metric.kind == sl.RATE:
        size = size.replace(" %", " pts")
    return f"{arrow} {size} ({'better' if row.improved else 'worse'})"


def freshness(read: Reading, week: sl.Period) -> list[str]:
    """What the page says of figures that are not computed from the records as they are now:
    today's kept time, and the days being refreshed."""
    notes = []
    today = utcnow().date()
    if read.today_at is not None:
        late = " (records changed since: they are being refreshed)" if read.today_late else ""
        notes.append(
            f"Today's figures as of {read.today_at:%H:%M} UTC{late}: the current week is "
            "provisional until today ends."
        )
    elif week.start <= today < week.end:
        notes.append(f"Today's figures computed live as of {utcnow():%H:%M} UTC.")
    if read.behind:
        days = [day for day, _ in read.behind]
        oldest = min(at for _, at in read.behind)
        listed = ", ".join(f"{day:%Y-%m-%d}" for day in days[:5]) + (", …" if len(days) > 5 else "")
        notes.append(
            f"{len(days)} {'day is' if len(days) == 1 else 'days are'} being refreshed "
            f"({listed}): their records changed since their figures were kept, so those "
            f"figures are as kept, the oldest at {oldest:%Y-%m-%d %H:%M} UTC."
        )
    return notes


def _week_arg() -> tuple[sl.Period, str | None]:
    """The week of ``?week=`` (default the current week) and the refusal, if any."""
    text = request.args.get("week")
    if not text:
        return sl.week_of(utcnow().date()), None
    try:
        return sl.parse_week(text), None
    except ServiceError as error:
        return sl.week_of(utcnow().date()), error.message


class ServiceLevelsView(BaseView):
    """KPI tiles against target, weekly trends, the root-cause Pareto, drill-downs."""

    route_base = "/service-levels"
    default_view = "index"
    class_permission_name = security.SERVICE_LEVELS
    method_permission_name = {
        "index": "read",
        "orders": "read",
        "cause": "read",
        "targets": "write",
        "report": "report",
        "kept": "report",
    }
    datamodel = SQLAInterface(ServiceLevelTarget)  # names the record of an audited refusal

    def _page(self, week: sl.Period, status: int = 200):
        actor = current_actor("web")
        shown = page(week)
        tiles = [self._tile(row, week) for row in shown.rows]
        bars = shown.bars
        chart = pareto_chart(
            [
                ParetoBar(
                    bar.label,
                    bar.count,
                    bar.cumulative,
                    url_for(".cause", week=week.label, source=bar.source, cause=bar.cause),
                )
                for bar in bars
            ]
        )
        reports = weekly_report.latest(actor, 5) if actor.can(*security.WEEKLY_REPORT) else []
        return self.render_template(
            "service_levels.html",
            week=week,
            last_day=week.end - timedelta(days=1),
            previous=sl.week_of(week.start - timedelta(days=7)),
            following=sl.week_of(week.end),
            current=sl.week_of(utcnow().date()),
            tiles=tiles,
            freshness=freshness(shown.read, week),
            bars=bars,
            pareto_chart=chart,
            reports=reports,
            can_report=actor.can(*security.WEEKLY_REPORT),
            can_set_targets=actor.can("can_write", security.SERVICE_LEVELS),
            can_log=actor.can("can_write", security.IMPROVEMENTS),
            open_actions=improvements.open_actions(20),
            metrics=sl.METRICS,
        ), status

    def _tile(self, row: Row, week: sl.Period) -> dict[str, Any]:
        key = row.metric.key
        points = [
            Point(
                sl.week_label(monday),
                float(figure.value) if figure.value is not None else None,
                url_for(".orders", metric=key, week=sl.week_label(monday)),
                figure_text(row.metric, figure.value),
            )
            for monday, figure in row.trend
        ]
        return {
            "row": row,
            "value": figure_text(row.metric, row.value),
            "previous": figure_text(row.metric, row.previous.value),
            "change": change_text(row),
            "target": figure_text(row.metric, row.target.target),
            "chart": line_chart(
                points, target=float(row.target.target), title=f"{row.metric.label}, weekly"
            ),
            "orders": url_for(".orders", metric=key, week=week.label),
            "missed": url_for(".orders", metric=key, week=week.label, missed=1),
            "last_week": url_for(
                ".orders", metric=key, week=sl.week_label(week.start - timedelta(days=7))
            ),
        }

    @expose("/")
    @has_access
    def index(self):
        week, problem = _week_arg()
        if problem:
            flash(problem, "danger")
            return self._page(week, 422)
        return self._page(week)

    @expose("/orders")
    @has_access
    def orders(self):
        """The orders behind a figure: ``metric``, ``week``, and ``missed=1`` for its misses."""
        week, problem = _week_arg()
        key = request.args.get("metric", "")
        missed = request.args.get("missed") == "1"
        try:
            if problem:
                raise ServiceError(problem)
            metric = sl.metric(key)
            found = sl.orders_behind(key, week, missed=missed)
        except ServiceError as error:
            flash(error.message, "danger")
            return self._page(week, 422)
        what = f"Orders that missed {metric.label}" if missed else f"Orders behind {metric.label}"
        return self.render_template(
            "service_level_orders.html", title=f"{what}, {week.label}", orders=found, week=week
        )

    @expose("/cause")
    @has_access
    def cause(self):
        """The orders behind one Pareto bar (``source``, ``cause``, ``week``)."""
        week, problem = _week_arg()
        if problem:
            flash(problem, "danger")
            return self._page(week, 422)
        source, cause = request.args.get("source", ""), request.args.get("cause", "")
        found = orders_for_cause(week, source, cause)
        return self.render_template(
            "service_level_orders.html",
            title=f"{cause_label(source, cause)}, {week.label}",
            orders=found,
            week=week,
        )

    @expose("/report")
    @has_access
    def report(self):
        """Make the week's workbook (kept and audited) and download it."""
        week, problem = _week_arg()
        try:
            if problem:
                raise ServiceError(problem)
            made = weekly_report.make(current_actor("web"), "web", week)
        except ServiceError as error:
            flash(error.message, "danger")
            return self._page(sl.week_of(utcnow().date()), 422)
        return send_file(
            weekly_report.io_of(made),
            mimetype=weekly_report.XLSX_TYPE,
            as_attachment=True,
            download_name=made.filename,
        )

    @expose("/reports/<int:pk>")
    @has_access
    def kept(self, pk: int):
        """A kept workbook (the scheduler's, or one made earlier)."""
        try:
            report = weekly_report.kept(pk, current_actor("web"))
        except ServiceError as error:
            flash(error.message, "danger")
            return redirect(url_for(".index"))
        return send_file(
            weekly_report.io_of(report),
            mimetype=weekly_report.XLSX_TYPE,
            as_attachment=True,
            download_name=report.filename,
        )

    @expose("/targets", methods=["GET", "POST"])
    @has_access_audited
    def targets(self):
        """Each metric's target and amber limit (Supervisors and Admins)."""
        status, errors, typed = 200, {}, {}
        if request.method == "POST":
            outcome = run_form_action(
                SET_TARGET,
                None,
                lambda target: f"Target of {sl.METRICS[target.metric].label} saved",
            )
            if outcome.ok or not keeps_input(outcome):
                return redirect(url_for(".targets"))
            status, errors, typed = outcome.status, _field_errors(outcome.error), request.form
        return self.render_template(
            "service_level_targets.html",
            metrics=sl.METRICS,
            targets=targets(),
            text=figure_text,
            plain=target_text,
            errors=errors,
            typed=typed,
        ), status


class ImprovementActionView(ServiceModelView):
    """The improvement log: problems, root causes, actions, and the metric each should move."""

    service = improvements.improvements
    class_permission_name = security.IMPROVEMENTS
    method_permission_name = {**security.METHOD_PERMISSIONS, "log": "write", "step": "write"}
    include_route_methods = {"list", "show", "edit", "log", "step"}
    list_title = "Improvement log"
    show_title = "Improvement action"
    edit_title = "Edit improvement action"
    list_columns = ["id", "problem", "root_cause", "owner", "due_date", "status", "metric"]
    list_columns += ["value_before", "value_after"]
    show_columns = [*list_columns, "action", "cause_source", "cause_code", "week_before"]
    show_columns += ["week_after", "created_by", "created_at", "closed_at"]
    edit_columns = ["problem", "root_cause", "action", "owner", "due_date", "metric"]
    search_columns = ["problem", "root_cause", "owner", "status", "metric", "due_date"]
    order_columns = ["id", "due_date", "status"]
    base_order = ("id", "desc")
    label_columns = {
        "id": "No.",
        "root_cause": "Root cause",
        "due_date": "Due",
        "value_before": "Before",
        "value_after": "After",
        "week_before": "Measured before",
        "week_after": "Measured after",
        "cause_source": "From",
        "cause_code": "Cause",
    }
    formatters_columns = {
        "status": lambda status: status.replace("_", " "),
        "metric": lambda key: sl.METRICS[key].label if key in sl.METRICS else "",
        "cause_source": lambda source: SOURCES.get(source, ""),
        "cause_code": lambda code: code or "",
        "value_before": lambda value: "" if value is None else format(value.normalize(), "f"),
        "value_after": lambda value: "" if value is None else format(value.normalize(), "f"),
        "week_before": lambda week: week or "",
        "week_after": lambda week: week or "",
        "due_date": lambda day: day.strftime("%Y-%m-%d"),
        "created_at": lambda at: at.strftime("%Y-%m-%d %H:%M UTC"),
        "closed_at": lambda at: at.strftime("%Y-%m-%d %H:%M UTC") if at else "",
    }
    show_template = "improvement_action_show.html"

    @expose("/log", methods=["GET", "POST"])
    @has_access_audited
    def log(self):
        """Log an action; from a Pareto bar the problem and cause come filled in."""
        status, errors = 200, {}
        typed: Any = request.args
        if request.method == "POST":
            outcome = run_form_action(
                LOG_IMPROVEMENT, None, lambda action: f"Improvement action {action.id} logged"
            )
            if outcome.ok:
                return redirect(url_for(".show", pk=outcome.result.id))
            status, errors, typed = outcome.status, _field_errors(outcome.error), request.form
        return self.render_template(
            "improvement_action_log.html",
            typed=typed,
            errors=errors,
            metrics=sl.METRICS,
            default_due=(utcnow().date() + timedelta(days=14)).isoformat(),
        ), status

    @expose("/step/<int:pk>/<name>", methods=["POST"])
    @has_access_audited
    def step(self, pk: int, name: str):
        """Start, complete, drop, reopen or measure an action from its page."""
        action = IMPROVEMENT_ACTIONS.get(name)
        if action is None:
            flash(f"{name!r} is not an action on an improvement", "danger")
            return redirect(url_for(".show", pk=pk))
        return record_action(action, pk, lambda done: f"{done} is {done.status}", ".show")


def register_service_level_views() -> None:
    """Add Service levels → Service levels and Improvement log, and the show page's helper."""
    appbuilder.add_view(
        ServiceLevelsView, "Service levels", icon="fa-tachometer", category="Service levels"
    )
    appbuilder.add_view(
        ImprovementActionView, "Improvement log", icon="fa-wrench", category="Service levels"
    )

    @current_app.context_processor
    def _improvement_helpers() -> dict[str, Any]:
        return {"load_improvement": lambda pk: db.session.get(ImprovementAction, pk)}
