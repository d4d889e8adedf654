"""``stock_receipt``: POST receives stock (a numbered goods receipt); GET lists and shows.

The POST runs ``receipts.record_receipt`` through the action pipeline (422 per field, 403
audited); the receipt's ledger movement and backorder fills follow from that service.
"""

from __future__ import annotations

from flask import Response
from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.actions.receipts import RECEIVE, StockReceiptInput
from portal.api.base import ResourceApi
from portal.models import StockReceipt


class StockReceiptApi(ResourceApi):
    resource_name = "stock_receipt"
    datamodel = SQLAInterface(StockReceipt)
    class_permission_name = security.RECEIPTS
    include_route_methods = {"get", "get_list", "post"}
    list_columns = [
        "id",
        "number",
        "product_id",
        "product.sku",
        "warehouse_id",
        "warehouse.code",
        "quantity",
        "product.unit",
        "reference",
        "note",
        "received_at",
        "received_by",
    ]
    show_columns = list_columns
    order_columns = ["id", "number", "received_at", "quantity"]
    base_order = ("id", "desc")
    add_model_schema = StockReceiptInput()

    def post_headless(self) -> Response:
        return self.run_action(RECEIVE)
