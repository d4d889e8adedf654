"""Order lifecycle models: validation checks, allocations, backorders, shipments, revisions,
returns, notifications and API idempotency keys."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder.models.sqla import Model
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.core import (
    PRICE,
    OrderLine,
    Product,
    SalesOrder,
    UTCDateTime,
    Versioned,
    Warehouse,
    utcnow,
)


class BackorderStatus(enum.StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"


class ShipmentStatus(enum.StrEnum):
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class ReturnStatus(enum.StrEnum):
    REQUESTED = "requested"
    AUTHORIZED = "authorized"
    RECEIVED = "received"
    CREDITED = "credited"
    CLOSED = "closed"
    REJECTED = "rejected"


class NotificationStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


DELAY_REASONS = {
    "carrier_delay": "Carrier delay",
    "stock_shortage": "Stock shortage",
    "weather": "Weather",
    "customs": "Customs hold",
    "address_issue": "Address issue",
    "capacity": "Warehouse capacity",
    "other": "Other",
}
CANCEL_REASONS = {
    "customer_request": "Customer request",
    "duplicate": "Duplicate order",
    "credit": "Credit refused",
    "stock": "No stock available",
    "pricing": "Pricing disagreement",
    "other": "Other",
}
RETURN_CONDITIONS = ("restock", "scrap")


class OrderCheck(Model):
    """The latest result of one named validation check on an order."""

    __tablename__ = "order_check"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    passed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    detail: Mapped[str | None] = mapped_column(String(400))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    order: Mapped[SalesOrder] = relationship()

    __table_args__ = (UniqueConstraint("order_id", "name", name="uq_order_check_name"),)


class Allocation(Model):
    """Units of an order line reserved in one warehouse (released when shipped/cancelled)."""

    __tablename__ = "allocation"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), nullable=False)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    order_line: Mapped[OrderLine] = relationship()
    warehouse: Mapped[Warehouse] = relationship()

    __table_args__ = (
        UniqueConstraint("order_line_id", "warehouse_id", name="uq_allocation_line_warehouse"),
        CheckConstraint("quantity >= 0", name="ck_allocation_quantity"),
    )


class Backorder(Versioned, Model):
    """Quantity of a line that could not be allocated, filled when stock arrives."""

    __tablename__ = "backorder"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)  # still to fill
    # What was short when the backorder was made (partial fills lower ``quantity`` only).
    initial_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    expected_date: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=BackorderStatus.OPEN.value, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_line: Mapped[OrderLine] = relationship()

    __table_args__ = (
        Index("ix_backorder_order_line", "order_line_id"),
        CheckConstraint("quantity > 0", name="ck_backorder_quantity"),
        CheckConstraint("priority BETWEEN 1 AND 9", name="ck_backorder_priority"),
    )

    def __repr__(self) -> str:
        return f"BO {self.order_line} × {self.quantity}"


class StockReceipt(Model):
    """A goods receipt: ``quantity`` units (in the product's unit) arrived in a warehouse.

    Written once by ``inventory.record_receipt``, which books the same quantity as a receipt
    movement of the inventory ledger (its reference is the receipt's number).
    """

    __tablename__ = "stock_receipt"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), nullable=False)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    reference: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(400))
    received_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, index=True
    )
    received_by: Mapped[str] = mapped_column(String(120), nullable=False)
    product: Mapped[Product] = relationship()
    warehouse: Mapped[Warehouse] = relationship()

    __table_args__ = (
        Index("ix_stock_receipt_product", "product_id"),
        CheckConstraint("quantity > 0", name="ck_stock_receipt_quantity"),
    )

    @property
    def unit(self) -> str:
        """The product's unit of measure, which ``quantity`` counts."""
        return self.product.unit

    def __repr__(self) -> str:
        return self.number


class PriceOverrideStatus(enum.StrEnum):
    """A price override request's states."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class PriceOverrideRequest(Versioned, Model):
    """A Specialist's request to sell an order line at a price other than the price list's.

    The line keeps its price until a Supervisor (never the requester) approves; approval
    sets the line's price and marks it overridden, rejection leaves it. Either takes a reason.
    """

    __tablename__ = "price_override_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), nullable=False)
    requested_price: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    price_before: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=PriceOverrideStatus.REQUESTED.value, index=True
    )
    requested_by: Mapped[str] = mapped_column(String(120), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(String(200))
    order_line: Mapped[OrderLine] = relationship()

    __table_args__ = (
        Index("ix_price_override_request_line", "order_line_id"),
        CheckConstraint("requested_price >= 0", name="ck_price_override_request_price"),
    )

    def __repr__(self) -> str:
        return f"price {self.requested_price} for {self.order_line}"


class Shipment(Versioned, Model):
    """Goods leaving one warehouse for one order; late when its ETA passes the promise."""

    __tablename__ = "shipment"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id"), nullable=False)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"), nullable=False)
    carrier: Mapped[str] = mapped_column(String(60), nullable=False)
    tracking_number: Mapped[str | None] = mapped_column(String(80))
    ship_date: Mapped[date] = mapped_column(Date, nullable=False)
    eta: Mapped[date | None] = mapped_column(Date)
    delivered_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=ShipmentStatus.SHIPPED.value
    )
    delay_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    order: Mapped[SalesOrder] = relationship()
    warehouse: Mapped[Warehouse] = relationship()
    lines: Mapped[list[ShipmentLine]] = relationship(back_populates="shipment")

    __table_args__ = (
        Index("ix_shipment_order", "order_id"),
        # the service levels read shipments by the week they shipped or arrived
        Index("ix_shipment_ship_date", "ship_date"),
        Index("ix_shipment_delivered_date", "delivered_date"),
    )

    @property
    def is_late(self) -> bool:
        promised = self.order.promised_date if self.order else None
        if promised is None:
            return False
        arrival = self.delivered_date or self.eta
        return arrival is not None and arrival > promised

    def __repr__(self) -> str:
        return self.number


class ShipmentLine(Model):
    """Units of one order line in a shipment."""

    __tablename__ = "shipment_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipment.id"), nullable=False)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    shipment: Mapped[Shipment] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()

    __table_args__ = (
        Index("ix_shipment_line_order_line", "order_line_id"),
        Index("ix_shipment_line_shipment", "shipment_id"),
        CheckConstraint("quantity > 0", name="ck_shipment_line_quantity"),
    )


class OrderRevision(Model):
    """One amendment of a confirmed order: who, why, and the diff."""

    __tablename__ = "order_revision"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id"), nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    diff: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    order: Mapped[SalesOrder] = relationship()

    __table_args__ = (UniqueConstraint("order_id", "revision", name="uq_order_revision"),)


class ReturnAuthorization(Versioned, Model):
    """An RMA: requested → authorized → received → credited → closed (or rejected)."""

    __tablename__ = "return_authorization"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id"), nullable=False)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"), nullable=False)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=ReturnStatus.REQUESTED.value
    )
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    requested_by: Mapped[str] = mapped_column(String(120), nullable=False)
    credit_memo_id: Mapped[int | None] = mapped_column(ForeignKey("credit_memo.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    order: Mapped[SalesOrder] = relationship()
    warehouse: Mapped[Warehouse] = relationship()
    lines: Mapped[list[ReturnLine]] = relationship(back_populates="rma")

    __table_args__ = (
        Index("ix_return_authorization_created_at", "created_at"),
        Index("ix_return_authorization_order", "order_id"),
    )

    def __repr__(self) -> str:
        return self.number


class ReturnLine(Model):
    """Units of an order line coming back, and what happens to them."""

    __tablename__ = "return_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    rma_id: Mapped[int] = mapped_column(ForeignKey("return_authorization.id"), nullable=False)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    received_quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    condition: Mapped[str | None] = mapped_column(String(10))
    rma: Mapped[ReturnAuthorization] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()

    __table_args__ = (
        Index("ix_return_line_order_line", "order_line_id"),
        CheckConstraint("quantity > 0", name="ck_return_line_quantity"),
    )


class Notification(Model):
    """An outbox message about an order event, sent by the notify job over SMTP."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("sales_order.id"), index=True)
    event: Mapped[str] = mapped_column(String(30), nullable=False)
    recipients: Mapped[str] = mapped_column(String(1000), nullable=False)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(
        String(10), nullable=False, default=NotificationStatus.QUEUED.value, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order: Mapped[SalesOrder | None] = relationship()


class IdempotencyKey(Model):
    """The first response to an API request carrying an ``Idempotency-Key`` header."""

    __tablename__ = "idempotency_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), nullable=False)
    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    endpoint: Mapped[str] = mapped_column(String(100), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "endpoint", "key", name="uq_idempotency_key"),)


__all__ = [
    "CANCEL_REASONS",
    "DELAY_REASONS",
    "RETURN_CONDITIONS",
    "Allocation",
    "Backorder",
    "BackorderStatus",
    "IdempotencyKey",
    "Notification",
    "NotificationStatus",
    "OrderCheck",
    "OrderRevision",
    "PriceOverrideRequest",
    "PriceOverrideStatus",
    "ReturnAuthorization",
    "ReturnLine",
    "ReturnStatus",
    "Shipment",
    "ShipmentLine",
    "ShipmentStatus",
    "StockReceipt",
]
