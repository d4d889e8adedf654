"""Price lookup: a customer's price list with quantity breaks, else the product's list price."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import Customer, PriceListItem, Product


def price_for(customer: Customer, product: Product, quantity: int) -> Decimal:
    """The unit price for ``quantity`` units: the highest quantity break not above it."""
    if customer.price_list_id is not None:
        price = db.session.execute(
            select(PriceListItem.unit_price)
            .where(
                PriceListItem.price_list_id == customer.price_list_id,
                PriceListItem.product_id == product.id,
                PriceListItem.min_quantity <= max(quantity, 1),
            )
            .order_by(PriceListItem.min_quantity.desc())
            .limit(1)
        ).scalar_one_or_none()
        if price is not None:
            return price
    return product.list_price
