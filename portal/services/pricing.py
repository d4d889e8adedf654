"""Price lookup: a customer's price list with quantity breaks, else the product's list price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import Customer, PriceList, PriceListItem, Product


def price_for(customer: Customer, product: Product, quantity: int) -> Decimal:
    """The unit price for ``quantity`` units: the highest quantity break not above it."""
    return quote(customer, product, quantity).unit_price


def prices_for(customer: Customer, items: list[tuple[Product, int]]) -> list[Decimal]:
    """:func:`price_for` of many (product, quantity) pairs with one query."""
    breaks: dict[int, list[tuple[int, Decimal]]] = {}
    if customer.price_list_id is not None and items:
        rows = db.session.execute(
            select(PriceListItem.product_id, PriceListItem.min_quantity, PriceListItem.unit_price)
            .where(
                PriceListItem.price_list_id == customer.price_list_id,
                PriceListItem.product_id.in_({product.id for product, _ in items}),
            )
            .order_by(PriceListItem.min_quantity.desc())
        ).all()
        for product_id, min_quantity, unit_price in rows:
            breaks.setdefault(product_id, []).append((min_quantity, unit_price))
    prices = []
    for product, quantity in items:
        steps = breaks.get(product.id, [])
        price = next((p for minimum, p in steps if minimum <= max(quantity, 1)), None)
        prices.append(product.list_price if price is None else price)
    return prices


@dataclass(frozen=True)
class PriceQuote:
    """A unit price and where it comes from: a price list's quantity break, or list price."""

    unit_price: Decimal
    min_quantity: int | None  # the applied break's threshold; None: the product's list price
    price_list: str | None

    @property
    def source(self) -> str:
        """The applied break in words: ``Trade prices, from 100`` or ``list price``."""
        if self.min_quantity is None:
            return "list price"
        return f"{self.price_list}, from {self.min_quantity}"


def quote(customer: Customer, product: Product, quantity: int) -> PriceQuote:
    """The unit price of ``quantity`` units with the break applied (one query)."""
    if customer.price_list_id is not None:
        row = db.session.execute(
            select(PriceListItem.unit_price, PriceListItem.min_quantity, PriceList.name)
            .join(PriceList, PriceList.id == PriceListItem.price_list_id)
            .where(
                PriceListItem.price_list_id == customer.price_list_id,
                PriceListItem.product_id == product.id,
                PriceListItem.min_quantity <= max(quantity, 1),
            )
            .order_by(PriceListItem.min_quantity.desc())
            .limit(1)
        ).first()
        if row is not None:
            return PriceQuote(row.unit_price, row.min_quantity, row.name)
    return PriceQuote(product.list_price, None, None)
