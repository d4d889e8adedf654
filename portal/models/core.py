"""Core models: master data, stock and its ledger, orders and lines, the audit trail.

Rules every model follows (DESIGN.md section 2): money is ``Numeric`` mapped to ``Decimal``,
timestamps are timezone-aware UTC, quantities are integers in the unit of measure, and
business records carry a ``version`` column used for optimistic locking. Records are changed
only through ``portal.services``; nothing here writes.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask_appbuilder.models.sqla import Model
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

MONEY = Numeric(14, 2)
PRICE = Numeric(14, 4)
PERCENT = Numeric(5, 2)
CENT = Decimal("0.01")


def line_amount(quantity: int, qty_cancelled: int, unit_price: Decimal) -> Decimal:
    """What a line is worth: its open quantity (ordered less cancelled) times its unit price,
    to the cent. ``OrderLine.amount`` and the stored ``SalesOrder.total`` both use it."""
    return (Decimal(quantity - qty_cancelled) * Decimal(unit_price)).quantize(CENT)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (also on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Orderbridge stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Versioned:
    """Mixin for business records: optimistic locking through a ``version`` column.

    SQLAlchemy bumps ``version`` on every UPDATE and adds ``WHERE version = :old`` to it, so a
    concurrent writer gets ``StaleDataError`` instead of overwriting silently.
    """

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:
        return {"version_id_col": cls.__table__.c.version}


class OrderStatus(enum.StrEnum):
    """Sales order lifecycle states (DESIGN.md section 3)."""

    QUOTE = "quote"
    DRAFT = "draft"
    ON_HOLD = "on_hold"
    CONFIRMED = "confirmed"
    PARTIALLY_ALLOCATED = "partially_allocated"
    ALLOCATED = "allocated"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    INVOICED = "invoiced"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class MovementKind(enum.StrEnum):
    """Kinds of inventory ledger movement."""

    RECEIPT = "receipt"
    ADJUSTMENT = "adjustment"
    ALLOCATION = "allocation"
    RELEASE = "release"
    SHIPMENT = "shipment"
    RETURN = "return"


INCOTERMS = ("EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF")


class PaymentTerm(Model):
    """Payment terms such as Net 30: an invoice is due ``days`` after issue."""

    __tablename__ = "payment_term"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    days: Mapped[int] = mapped_column(Integer, nullable=False, default=30)

    __table_args__ = (CheckConstraint("days >= 0", name="ck_payment_term_days"),)

    def __repr__(self) -> str:
        return self.name


class PriceList(Model):
    """A named list of product prices, with quantity breaks."""

    __tablename__ = "price_list"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    items: Mapped[list[PriceListItem]] = relationship(
        back_populates="price_list", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return self.name


class PriceListItem(Model):
    """The unit price of a product on a price list from ``min_quantity`` upwards."""

    __tablename__ = "price_list_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    price_list_id: Mapped[int] = mapped_column(ForeignKey("price_list.id"), nullable=False)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), nullable=False)
    min_quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    unit_price: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    price_list: Mapped[PriceList] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()

    __table_args__ = (
        UniqueConstraint("price_list_id", "product_id", "min_quantity", name="uq_price_break"),
        CheckConstraint("min_quantity >= 1", name="ck_price_break_min_qty"),
        CheckConstraint("unit_price >= 0", name="ck_price_break_price"),
    )

    def __repr__(self) -> str:
        return f"{self.product} ≥{self.min_quantity}: {self.unit_price}"


class Customer(Versioned, Model):
    """A customer account: credit limit and hold, terms, price list, addresses, contacts."""

    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    credit_limit: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal("0"))
    credit_hold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    payment_term_id: Mapped[int | None] = mapped_column(ForeignKey("payment_term.id"))
    price_list_id: Mapped[int | None] = mapped_column(ForeignKey("price_list.id"))
    # attributes a team's files carry (kept by imports): market segment and sales region
    segment: Mapped[str | None] = mapped_column(String(40))
    region: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # joined: loading a customer brings its terms, which an order's checks and invoices need
    payment_term: Mapped[PaymentTerm | None] = relationship(lazy="joined")
    price_list: Mapped[PriceList | None] = relationship()
    addresses: Mapped[list[CustomerAddress]] = relationship(back_populates="customer")
    contacts: Mapped[list[CustomerContact]] = relationship(back_populates="customer")

    __table_args__ = (CheckConstraint("credit_limit >= 0", name="ck_customer_credit_limit"),)

    def __repr__(self) -> str:
        return f"{self.code} {self.name}"


class CustomerAddress(Model):
    """A ship-to (or bill-to) address of a customer."""

    __tablename__ = "customer_address"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), nullable=False)
    label: Mapped[str] = mapped_column(String(60), nullable=False, default="Main")
    line1: Mapped[str] = mapped_column(String(120), nullable=False)
    line2: Mapped[str | None] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(80), nullable=False)
    region: Mapped[str | None] = mapped_column(String(80))
    postal_code: Mapped[str] = mapped_column(String(20), nullable=False)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    is_default_ship_to: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    customer: Mapped[Customer] = relationship(back_populates="addresses")

    __table_args__ = (Index("ix_customer_address_customer", "customer_id"),)

    @property
    def is_complete(self) -> bool:
        return all((self.line1, self.city, self.postal_code, self.country))

    def __repr__(self) -> str:
        return f"{self.label}: {self.line1}, {self.city} {self.postal_code} {self.country}"


class CustomerContact(Model):
    """A person at a customer who receives order notifications."""

    __tablename__ = "customer_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str | None] = mapped_column(String(60))
    receives_notifications: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    customer: Mapped[Customer] = relationship(back_populates="contacts")

    def __repr__(self) -> str:
        return f"{self.name} <{self.email}>"


class Product(Versioned, Model):
    """A sellable product, sold in multiples of its pack size."""

    __tablename__ = "product"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(160), nullable=False)
    unit: Mapped[str] = mapped_column(String(12), nullable=False, default="ea")
    pack_size: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    list_price: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    lead_time_days: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    category: Mapped[str | None] = mapped_column(String(60))
    sub_category: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (
        CheckConstraint("pack_size >= 1", name="ck_product_pack_size"),
        CheckConstraint("list_price >= 0", name="ck_product_list_price"),
        CheckConstraint("lead_time_days >= 0", name="ck_product_lead_time"),
    )

    def __repr__(self) -> str:
        return f"{self.sku} {self.name}"


class Warehouse(Versioned, Model):
    """A stocking location; allocation draws from warehouses in priority order (1 first)."""

    __tablename__ = "warehouse"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=10)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    __table_args__ = (CheckConstraint("priority >= 1", name="ck_warehouse_priority"),)

    def __repr__(self) -> str:
        return f"{self.code} {self.name}"


class StockLevel(Versioned, Model):
    """Stock of one product in one warehouse; changed only by inventory movements."""

    __tablename__ = "stock_level"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), nullable=False)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"), nullable=False)
    on_hand: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    allocated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reorder_point: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    product: Mapped[Product] = relationship()
    warehouse: Mapped[Warehouse] = relationship()

    __table_args__ = (
        UniqueConstraint("product_id", "warehouse_id", name="uq_stock_product_warehouse"),
        CheckConstraint("on_hand >= 0", name="ck_stock_on_hand"),
        CheckConstraint("allocated >= 0", name="ck_stock_allocated"),
        CheckConstraint("allocated <= on_hand", name="ck_stock_allocated_le_on_hand"),
    )

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated

    def __repr__(self) -> str:
        return f"{self.product} @ {self.warehouse}"


class InventoryMovement(Model):
    """One line of the append-only inventory ledger; stock levels are its running sum."""

    __tablename__ = "inventory_movement"
    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), nullable=False)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"), nullable=False)
    on_hand_delta: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    allocated_delta: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reference: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    product: Mapped[Product] = relationship()
    warehouse: Mapped[Warehouse] = relationship()

    __table_args__ = (Index("ix_movement_product_warehouse", "product_id", "warehouse_id"),)


# the order columns searched by "contains", "starts with" and "ends with"
TRIGRAM_COLUMNS = ("number", "customer_po", "external_ref")


def _trigram_index(table: str, column: str) -> Index:
    """A trigram index on PostgreSQL (a plain one elsewhere, where it serves prefixes)."""
    return Index(
        f"ix_{table}_{column}_trgm",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
    )


class SalesOrder(Versioned, Model):
    """A customer's sales order (or quote) with its lines."""

    __tablename__ = "sales_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), nullable=False)
    customer_po: Mapped[str | None] = mapped_column(String(40))
    order_date: Mapped[date] = mapped_column(Date, nullable=False)
    requested_date: Mapped[date | None] = mapped_column(Date)
    promised_date: Mapped[date | None] = mapped_column(Date)
    ship_to_id: Mapped[int | None] = mapped_column(ForeignKey("customer_address.id"))
    payment_term_id: Mapped[int | None] = mapped_column(ForeignKey("payment_term.id"))
    incoterm: Mapped[str | None] = mapped_column(String(3))
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    status: Mapped[str] = mapped_column(
        String(24), nullable=False, default=OrderStatus.DRAFT.value, index=True
    )
    hold_reasons: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    # the team's own order id (from an attached tracker or an import), unique when set
    external_ref: Mapped[str | None] = mapped_column(String(60))
    # where the order came from: "portal", "api", "tracker:<name>", "import:<file>"
    source: Mapped[str | None] = mapped_column(String(120))
    # history kept as given by an import: when it shipped and arrived, how, and where to
    ship_date: Mapped[date | None] = mapped_column(Date)
    delivered_date: Mapped[date | None] = mapped_column(Date)
    ship_mode: Mapped[str | None] = mapped_column(String(40))
    ship_to_text: Mapped[str | None] = mapped_column(String(300))
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # the sum of the lines' amounts, kept by portal.services.order_totals (never set by hand)
    total: Mapped[Decimal] = mapped_column(
        MONEY, nullable=False, default=Decimal("0.00"), server_default="0"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    customer: Mapped[Customer] = relationship()
    ship_to: Mapped[CustomerAddress | None] = relationship()
    payment_term: Mapped[PaymentTerm | None] = relationship()
    # selectin: a list of orders loads all their lines in one more query, not one per order
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_sales_order_customer_po", "customer_id", "customer_po"),
        Index("ix_sales_order_order_date", "order_date"),
        # the service levels read a day's orders by due date (promised, else requested)
        Index("ix_sales_order_promised_date", "promised_date"),
        Index("ix_sales_order_requested_date", "requested_date"),
        Index("ix_sales_order_external_ref", "external_ref", unique=True),
        # what the lists filter and sort by (migration 0023; tests/test_list_plans.py)
        Index("ix_sales_order_total", "total", "id"),
        Index("ix_sales_order_customer_id", "customer_id", "id"),
        Index("ix_sales_order_status_date", "status", "order_date", "id"),
        Index("ix_sales_order_ship_to", "ship_to_id"),
        Index("ix_sales_order_payment_term", "payment_term_id"),
        *(_trigram_index("sales_order", name) for name in TRIGRAM_COLUMNS),
    )

    @hybrid_property
    def total_text(self) -> str:
        """The total as pages show it: with the currency and thousands separators. In SQL it
        is the stored total, so a list shows ``total_text`` and sorts by ``total``."""
        return f"{self.currency} {self.total:,.2f}"

    @total_text.inplace.expression
    @classmethod
    def _total_text_expression(cls) -> Any:
        return cls.total

    def __repr__(self) -> str:
        return self.number


class OrderLine(Versioned, Model):
    """A line of a sales order with its fulfilment quantities."""

    __tablename__ = "order_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id"), nullable=False)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    list_price: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    discount_pct: Mapped[Decimal] = mapped_column(PERCENT, nullable=False, default=Decimal("0"))
    qty_allocated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    qty_backordered: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    qty_shipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    qty_delivered: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    qty_cancelled: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    qty_returned: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    price_override_by: Mapped[str | None] = mapped_column(String(120))
    price_override_reason: Mapped[str | None] = mapped_column(String(200))
    # the team's own line id (e.g. a Row ID of their tracker), unique when set
    external_ref: Mapped[str | None] = mapped_column(String(60))
    order: Mapped[SalesOrder] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()

    __table_args__ = (
        UniqueConstraint("order_id", "line_no", name="uq_order_line_no"),
        Index("ix_order_line_product", "product_id"),
        Index("ix_order_line_line_no", "line_no", "id"),  # the line list's sorts (0025)
        Index("ix_order_line_quantity", "quantity", "id"),
        Index("ix_order_line_external_ref", "external_ref", unique=True),
        CheckConstraint("quantity > 0", name="ck_order_line_quantity"),
        CheckConstraint("unit_price >= 0", name="ck_order_line_unit_price"),
        CheckConstraint(
            "qty_allocated >= 0 AND qty_backordered >= 0 AND qty_shipped >= 0 "
            "AND qty_delivered >= 0 AND qty_cancelled >= 0 AND qty_returned >= 0",
            name="ck_order_line_quantities",
        ),
    )

    @property
    def amount(self) -> Decimal:
        return line_amount(self.quantity, self.qty_cancelled, self.unit_price)

    def __repr__(self) -> str:
        return f"{self.order.number if self.order else '?'}/{self.line_no}"


class AuditEvent(Model):
    """One append-only, hash-chained audit event: who changed what, when, from where."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    source: Mapped[str] = mapped_column(String(80), nullable=False)
    entity: Mapped[str] = mapped_column(String(40), nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    changes: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # The id of the HMAC key of ``hash`` (AUDIT_HMAC_KEYS); null on legacy unkeyed SHA-256 events.
    key_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_audit_event_entity", "entity", "entity_id"),)

    def __repr__(self) -> str:
        return f"#{self.id} {self.action} {self.entity}:{self.entity_id}"


class AuditChainHead(Model):
    """A single row naming the last audit event; locked while appending to the chain."""

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class NumberSequence(Model):
    """A gap-free counter for business numbers (orders, invoices), locked while taken."""

    __tablename__ = "number_sequence"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(10), nullable=False)
    next_value: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    width: Mapped[int] = mapped_column(Integer, nullable=False, default=6)


class JobRun(Model):
    """A record of one background job run (for the portal's queue page and tests)."""

    __tablename__ = "job_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


__all__ = [
    "INCOTERMS",
    "MONEY",
    "PERCENT",
    "PRICE",
    "AuditChainHead",
    "AuditEvent",
    "Customer",
    "CustomerAddress",
    "CustomerContact",
    "InventoryMovement",
    "JobRun",
    "MovementKind",
    "NumberSequence",
    "OrderLine",
    "OrderStatus",
    "PaymentTerm",
    "PriceList",
    "PriceListItem",
    "Product",
    "SalesOrder",
    "StockLevel",
    "UTCDateTime",
    "Warehouse",
    "line_amount",
    "utcnow",
]
