"""``backorder``: read-only (backorders change through allocation and stock receipts)."""

from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.api.base import ResourceApi
from portal.models import Backorder


class BackorderApi(ResourceApi):
    resource_name = "backorder"
    datamodel = SQLAInterface(Backorder)
    class_permission_name = security.BACKORDERS
    list_columns = [
        "id",
        "order_line_id",
        "quantity",
        "expected_date",
        "priority",
        "status",
        "created_at",
        "filled_at",
    ]
    show_columns = list_columns
    order_columns = ["id", "expected_date", "priority", "status", "created_at"]
