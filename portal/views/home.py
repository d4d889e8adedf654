"""The home page: order counts by status, then the work waiting for each of the user's roles
(``services.workbench``): a Specialist's orders needing attention with every reason, holds to
fix and tracker sync errors; a Supervisor's approvals and sync conflicts; an Auditor's exports
and the last audit-chain verification; an Admin's jobs, queues and failed jobs (with Retry).

Each section runs a fixed number of queries (``tests/test_home.py`` counts them).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_appbuilder import BaseView, IndexView, expose, has_access
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import func, select

import portal.security as security
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import OrderStatus, SalesOrder
from portal.services import audit_checkpoint, jobs, workbench
from portal.services.base import ServiceError

VERIFY_JOB = "verify_audit_chain"


def _specialist() -> dict[str, Any]:
    attention = workbench.my_attention(current_user.username)
    return {
        "attention": attention,
        "holds": [item for item in attention if item.order.status == OrderStatus.ON_HOLD.value],
        "sync_errors": workbench.tracker_errors(current_actor("web")),
    }


def _supervisor() -> dict[str, Any]:
    return {
        "credits": workbench.credits_waiting(),
        "returns": workbench.returns_waiting(current_user.username),
        "price_requests": workbench.price_overrides_waiting(current_user.username),
        "holds": workbench.holds_waiting(),
        "conflicts": workbench.conflicts_waiting(),
    }


def _last_checkpoint() -> Any:
    try:
        readable = [point for _, point in audit_checkpoint.read() if not isinstance(point, str)]
    except OSError:
        return None
    return readable[-1] if readable else None


def _auditor() -> dict[str, Any]:
    return {
        "exports": workbench.recent_exports(),
        "verifications": workbench.recent_jobs(VERIFY_JOB, limit=1),
        "checkpoint": _last_checkpoint(),
    }


def _admin() -> dict[str, Any]:
    from jobs.queue import QUEUE_UNAVAILABLE, failed_jobs, queue_stats

    try:
        failed, queue_error = failed_jobs(), None
    except RedisError:
        failed, queue_error = [], QUEUE_UNAVAILABLE
    return {
        "jobs": workbench.recent_jobs(limit=10),
        "queues": queue_stats(),
        "failed": failed,
        "queue_error": queue_error,
    }


SECTIONS = {
    security.SPECIALIST: _specialist,
    security.SUPERVISOR: _supervisor,
    security.AUDITOR: _auditor,
    security.ADMIN_ROLE: _admin,
}


class DashboardView(IndexView):
    """The landing page: order counts by status, then each of the user's roles' work."""

    index_template = "dashboard.html"

    @expose("/")
    def index(self):
        counts: dict[str, int] = {}
        sections: dict[str, dict[str, Any]] = {}
        if current_user.is_authenticated:
            rows = db.session.execute(
                select(SalesOrder.status, func.count()).group_by(SalesOrder.status)
            ).all()
            counts = {status: count for status, count in rows}
            roles = {role.name for role in current_user.roles}
            sections = {name: build() for name, build in SECTIONS.items() if name in roles}
        ordered = [(status.value, counts.get(status.value, 0)) for status in OrderStatus]
        return self.render_template(
            self.index_template, appbuilder=self.appbuilder, counts=ordered, sections=sections
        )


class FailedJobView(BaseView):
    """Retry a failed background job (an Admin's, from the home page)."""

    route_base = "/failed-jobs"
    class_permission_name = security.JOBS
    method_permission_name = {"retry": "write"}

    @expose("/retry/<job_id>", methods=["POST"])
    @has_access
    def retry(self, job_id: str):
        from jobs.queue import QUEUE_UNAVAILABLE, retry_failed

        try:
            queue = jobs.retry(current_actor("web"), job_id, retry_failed)
        except LookupError as error:
            flash(str(error), "danger")
        except RedisError:
            flash(QUEUE_UNAVAILABLE, "danger")
        except ServiceError as error:
            flash(error.message, "danger")
        else:
            flash(f"job {job_id} is back on the {queue} queue", "success")
        return redirect(url_for("DashboardView.index"))


def register_home_views() -> None:
    """The failed-job retry route (the home page itself is the AppBuilder's index view)."""
    appbuilder.add_view_no_menu(FailedJobView)
