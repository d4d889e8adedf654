"""``order_line``: read, and PUT (quantity, price, discount) through ``orders.order_lines``."""

from __future__ import annotations

import portal.security as security
from portal.api.base import READ_ONLY_ROUTES, ServiceResourceApi
from portal.services import orders


class OrderLineApi(ServiceResourceApi):
    resource_name = "order_line"
    service = orders.order_lines
    class_permission_name = security.ORDER_LINES
    include_route_methods = READ_ONLY_ROUTES | {"put"}
    list_columns = [
        "id",
        "order_id",
        "line_no",
        "product_id",
        "quantity",
        "unit_price",
        "list_price",
        "discount_pct",
        "qty_allocated",
        "qty_backordered",
        "qty_shipped",
        "qty_delivered",
        "qty_cancelled",
        "qty_returned",
        "price_override_by",
        "price_override_reason",
        "version",
    ]
    show_columns = list_columns
    edit_columns = ["quantity", "unit_price", "discount_pct", "version"]
    order_columns = ["id", "order_id", "line_no", "product_id", "quantity"]
    search_columns = ["order_id", "product_id", "line_no", "quantity"]
