"""The goods receipt actions: ``stock_receipt`` create (REST, ids in the JSON body) and the
"Receive stock" form (the product typed as its SKU), both ``receipts.record_receipt``."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate
from sqlalchemy import func, select

from portal.actions import Action
from portal.actions.forms import WholeNumber
from portal.actions.schemas import Id, Quantity
from portal.extensions import db
from portal.models import Product, StockReceipt
from portal.services import receipts
from portal.services.base import Actor

REFERENCE_LENGTH = StockReceipt.__table__.c.reference.type.length
NOTE_LENGTH = StockReceipt.__table__.c.note.type.length


class StockReceiptInput(Schema):
    """``POST /api/v1/stock_receipt``."""

    product_id = Id(required=True)
    warehouse_id = Id(required=True)
    quantity = Quantity(required=True)
    reference = fields.String(allow_none=True, validate=validate.Length(max=REFERENCE_LENGTH))
    note = fields.String(allow_none=True, validate=validate.Length(max=NOTE_LENGTH))


class ReceiveStockForm(Schema):
    """The "Receive stock" form: ``product`` is the SKU typed (or picked from the search)."""

    product = fields.String(required=True, validate=validate.Length(1, 200))
    warehouse_id = WholeNumber(minimum=1, required=True)
    quantity = WholeNumber(minimum=1, required=True)
    reference = fields.String(validate=validate.Length(max=REFERENCE_LENGTH))
    note = fields.String(validate=validate.Length(max=NOTE_LENGTH))

    @post_load
    def _product_by_sku(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        sku = data.pop("product").strip()
        product_id = db.session.execute(
            select(Product.id).where(func.lower(Product.sku) == sku.lower())
        ).scalar_one_or_none()
        if product_id is None:
            raise ValidationError({"product": [f"no product with SKU {sku}"]})
        return {**data, "product_id": product_id}


def _receive(_: None, actor: Actor, body: dict[str, Any]) -> receipts.Received:
    return receipts.record_receipt(
        body["product_id"],
        body["warehouse_id"],
        body["quantity"],
        actor,
        reference=body.get("reference"),
        note=body.get("note"),
    )


RECEIVE = Action(
    "create",
    StockReceipt,
    lambda record, actor, body: _receive(record, actor, body).receipt,
    StockReceiptInput,
    status=201,
    body_required=True,
)
# The form's outcome keeps what the receipt fills, for the flash message.
RECEIVE_FORM = Action("create", StockReceipt, _receive, ReceiveStockForm)
