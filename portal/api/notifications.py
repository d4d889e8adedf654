"""``notification``: the outbox (sent by ``jobs.notify``), read-only but for one action:

* ``POST /api/v1/notification/<id>/requeue`` ``{"recipient"?}`` — put a failed message back
  in the outbox, to a corrected address (or comma-separated addresses) if given. Admins only
  (``can_requeue`` on ``Notification``); through the action pipeline and
  ``notifications.requeue``: 403 (audited), 404, 409 (not failed), 422 naming ``recipient``.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, fields, validate

import portal.security as security
from portal.actions import Action
from portal.api.base import READ_ONLY_ROUTES, ResourceApi
from portal.models import Notification
from portal.services import notifications
from portal.services.base import Actor


class RequeueSchema(Schema):
    recipient = fields.String(allow_none=True, validate=validate.Length(max=1000))


def _requeue(message: Notification, actor: Actor, body: dict[str, Any]) -> Notification:
    return notifications.requeue(message, actor, body.get("recipient"))


REQUEUE = Action("requeue", Notification, _requeue, RequeueSchema)


class NotificationApi(ResourceApi):
    resource_name = "notification"
    datamodel = SQLAInterface(Notification)
    class_permission_name = security.NOTIFICATIONS
    method_permission_name = {**security.METHOD_PERMISSIONS, "requeue": "requeue"}
    include_route_methods = READ_ONLY_ROUTES | {"requeue"}
    list_columns = [
        "id",
        "order_id",
        "event",
        "recipients",
        "subject",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
    ]
    show_columns = [*list_columns, "body"]
    order_columns = ["id", "event", "status", "created_at", "sent_at"]

    @expose("/<int:pk>/requeue", methods=["POST"])
    @protect()
    @safe
    @permission_name("requeue")
    def requeue(self, pk: int):
        """Requeue a failed message, to a corrected recipient if given (Admins).
        ---
        post:
          description: Put a failed notification back in the outbox
          responses:
            200:
              description: The requeued notification
        """
        return self.run_action(REQUEUE, pk)
