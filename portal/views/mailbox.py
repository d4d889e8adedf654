"""The Mailbox page of the demo: what the customers received (``portal/mailbox.py``).

Registered only when ``MAILBOX_ENABLED`` is on (demo mode); in production and test mode the
routes do not exist at all. Everyone who may read notifications (every role) may read it.
"""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access

from portal import mailbox, security
from portal.extensions import appbuilder


def _folder() -> Path:
    return Path(current_app.config["MAILBOX_DIR"])


class MailboxView(BaseView):
    """The demo mail sink's messages: a list, and each message with its headers."""

    route_base = "/mailbox"
    class_permission_name = security.NOTIFICATIONS
    method_permission_name = {"index": "read", "show": "read"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        folder = _folder()
        return self.render_template(
            "mailbox/list.html",
            messages=mailbox.messages(folder),
            total=mailbox.count(folder),
            folder=folder,
        )

    @expose("/<name>")
    @has_access
    def show(self, name: str):
        received = mailbox.message(_folder(), name)
        if received is None:
            abort(404)
        return self.render_template("mailbox/show.html", message=received)


def register_mailbox_view() -> None:
    """Add the Mailbox page and its menu entry (demo mode only)."""
    appbuilder.add_view(MailboxView, "Mailbox", icon="fa-envelope", category="Demo")
