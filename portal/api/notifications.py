"""``notification``: the outbox, read-only (sent by ``jobs.notify``)."""

from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.api.base import ResourceApi
from portal.models import Notification


class NotificationApi(ResourceApi):
    resource_name = "notification"
    datamodel = SQLAInterface(Notification)
    class_permission_name = security.NOTIFICATIONS
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
        "sent_at",
    ]
    show_columns = [*list_columns, "body"]
    order_columns = ["id", "event", "status", "created_at", "sent_at"]
