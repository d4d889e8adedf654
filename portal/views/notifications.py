"""The outbox page: notifications with their status and last error, and the Admin's requeue.

A failed message shows a "Requeue" form on its page (the recipient, editable) and the list
has a "Requeue" action for selected rows. Both run ``notifications.requeue`` through the
action pipeline, row by row: the service re-checks the permission (``can_requeue``) and that
the row is failed, and validates the address; a refused row is reported with its reason.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_login import current_user

import portal.security as security
from portal.actions import perform, record_denial, valid_id
from portal.actors import current_actor
from portal.api.notifications import REQUEUE
from portal.extensions import appbuilder, db
from portal.models import Notification, SalesOrder
from portal.services.base import PermissionDenied
from portal.views.base import ReadOnlyModelView, run_form_action
from portal.views.pickers import Picked, PickerFilters


class NotificationView(PickerFilters, ReadOnlyModelView):
    datamodel = SQLAInterface(Notification)
    class_permission_name = security.NOTIFICATIONS
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "requeue": "requeue",
        "requeue_selected": "requeue",
    }
    include_route_methods = {"list", "show", "requeue", "action_post"}
    list_title = "Notifications"
    show_template = "notification_show.html"
    list_columns = ["order", "event", "recipients", "status", "attempts", "created_at", "sent_at"]
    show_columns = [*list_columns, "subject", "body", "next_attempt_at", "last_error"]
    search_columns = ["event", "status", "order"]
    quick_search_column = None
    pickers = {"order": Picked("Order", SalesOrder, "order")}
    base_order = ("id", "desc")

    @expose("/requeue/<int:pk>", methods=["POST"])
    @has_access
    def requeue(self, pk: int):
        """Requeue one failed message, to the recipient in the form (blank: as stored)."""
        run_form_action(REQUEUE, pk, lambda message: f"Notification {message.id} requeued")
        return redirect(url_for("NotificationView.show", pk=pk))

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        """FAB's row action, plus an audit event for each row refused for want of permission."""
        name = request.form.get("action", "")
        if name in self.actions and current_user.is_authenticated:
            permission = self.get_action_permission_name(name)
            if not self.appbuilder.sm.has_access(permission, self.class_permission_name):
                actor = current_actor("web")
                error = PermissionDenied(f"{actor.name} may not requeue notifications")
                for pk in request.form.getlist("rowid"):
                    if valid_id(pk) and db.session.get(Notification, int(pk)) is not None:
                        record_denial(actor, "notification", int(pk), "requeue", error)
        return super().action_post()

    @action("requeue", "Requeue", "Requeue the selected messages?", "fa-repeat", single=False)
    def requeue_selected(self, items: Any):
        """Each row through the pipeline: the service re-checks permission and state."""
        rows = items if isinstance(items, list) else [items]
        done: list[str] = []
        for row in rows:
            if row is None:
                continue
            outcome = perform(REQUEUE, row.id, dict, "web")
            if outcome.ok:
                done.append(str(row.id))
            else:
                flash(f"Notification {row.id} not requeued: {outcome.message}", "danger")
        if done:
            flash(f"Requeued: {', '.join(done)}", "success")
        return redirect(url_for("NotificationView.list"))


def register_notification_views() -> None:
    appbuilder.add_view(NotificationView, "Notifications", icon="fa-envelope", category="Orders")

    @current_app.context_processor
    def _notification_helpers() -> dict[str, Any]:
        return {"load_notification": lambda pk: db.session.get(Notification, pk)}
