"""Quantities in words: an order's quantity counts pieces, sold in packs of ``pack_size``.

A product's ``unit`` names its pack ("box" of 50 bolts) when ``pack_size`` > 1, so 1200 is
"1,200 pcs (24 × box of 50)", never "1200 box"; a product sold singly (``pack_size`` 1)
counts in its unit: "3 ea".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol


class Packed(Protocol):
    unit: str
    pack_size: int


def quantity_text(quantity: int, product: Packed) -> str:
    """``quantity`` of ``product`` as a person reads it (thousands separated)."""
    if product.pack_size <= 1:
        return f"{quantity:,} {product.unit}"
    packs, rest = divmod(quantity, product.pack_size)
    if rest:
        return f"{quantity:,} pcs (not whole packs: {product.unit} of {product.pack_size})"
    return f"{quantity:,} pcs ({packs:,} × {product.unit} of {product.pack_size})"


def price_text(amount: Decimal, currency: str) -> str:
    """``amount`` with its currency and thousands separators, cents at least: USD 1,234.50;
    a unit price keeps its further places (USD 0.1825)."""
    places = max(2, -amount.normalize().as_tuple().exponent) if amount else 2
    return f"{currency} {amount:,.{min(places, 4)}f}"
