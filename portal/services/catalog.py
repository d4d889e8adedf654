"""Master data: payment terms, price lists, customers, products and warehouses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import (
    INCOTERMS,
    Customer,
    CustomerAddress,
    CustomerContact,
    PaymentTerm,
    PriceList,
    PriceListItem,
    Product,
    StockLevel,
    Warehouse,
)
from portal.services import email_addresses
from portal.services.base import Actor, RecordService


def _non_negative(record: Any, names: tuple[str, ...]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in names:
        value = getattr(record, name)
        if value is not None and value < 0:
            errors[name] = ["must not be negative"]
    return errors


def _email_errors(record: Customer | CustomerContact, changed: set[str]) -> dict[str, list[str]]:
    """The address rule, for an entered address only: a bad one stored before the rule does
    not block other edits of the record (the outbox copes with it, see notifications)."""
    if "email" not in changed:
        return {}
    return email_addresses.field_errors(email=record.email)


class PaymentTermService(RecordService[PaymentTerm]):
    model = PaymentTerm
    entity = "payment_term"
    permission_view = "MasterData"
    creatable = editable = ("code", "name", "days")

    def validate(self, sess: Session, record: PaymentTerm, changed: set[str]):
        return _non_negative(record, ("days",))


class PriceListService(RecordService[PriceList]):
    model = PriceList
    entity = "price_list"
    permission_view = "MasterData"
    creatable = editable = ("name", "currency")


class PriceListItemService(RecordService[PriceListItem]):
    model = PriceListItem
    entity = "price_list_item"
    permission_view = "MasterData"
    creatable = ("price_list_id", "product_id", "min_quantity", "unit_price")
    editable = ("min_quantity", "unit_price")

    def validate(self, sess: Session, record: PriceListItem, changed: set[str]):
        errors = _non_negative(record, ("unit_price",))
        if record.min_quantity is not None and record.min_quantity < 1:
            errors["min_quantity"] = ["must be at least 1"]
        return errors


class CustomerService(RecordService[Customer]):
    model = Customer
    entity = "customer"
    permission_view = "Customer"
    creatable = (
        "code",
        "name",
        "email",
        "phone",
        "credit_limit",
        "credit_hold",
        "active",
        "currency",
        "payment_term_id",
        "price_list_id",
        "segment",
        "region",
    )
    editable = creatable

    def defaults(self) -> dict[str, Any]:
        return {"credit_limit": Decimal("0"), "credit_hold": False, "active": True}

    def validate(self, sess: Session, record: Customer, changed: set[str]):
        errors = _non_negative(record, ("credit_limit",))
        errors.update(_email_errors(record, changed))
        return errors


class CustomerAddressService(RecordService[CustomerAddress]):
    model = CustomerAddress
    entity = "customer_address"
    permission_view = "Customer"
    creatable = (
        "customer_id",
        "label",
        "line1",
        "line2",
        "city",
        "region",
        "postal_code",
        "country",
        "is_default_ship_to",
    )
    editable = creatable[1:]

    def validate(self, sess: Session, record: CustomerAddress, changed: set[str]):
        if record.country and (len(record.country) != 2 or not record.country.isalpha()):
            return {"country": ["must be a two-letter ISO country code"]}
        return {}


class CustomerContactService(RecordService[CustomerContact]):
    model = CustomerContact
    entity = "customer_contact"
    permission_view = "Customer"
    creatable = ("customer_id", "name", "email", "phone", "role", "receives_notifications")
    editable = creatable[1:]

    def validate(self, sess: Session, record: CustomerContact, changed: set[str]):
        return _email_errors(record, changed)


class ProductService(RecordService[Product]):
    model = Product
    entity = "product"
    permission_view = "Product"
    creatable = (
        "sku",
        "name",
        "unit",
        "pack_size",
        "list_price",
        "lead_time_days",
        "active",
        "category",
        "sub_category",
    )
    editable = creatable

    def defaults(self) -> dict[str, Any]:
        return {"unit": "ea", "pack_size": 1, "lead_time_days": 0, "active": True}

    def validate(self, sess: Session, record: Product, changed: set[str]):
        errors = _non_negative(record, ("list_price", "lead_time_days"))
        if record.pack_size is not None and record.pack_size < 1:
            errors["pack_size"] = ["must be at least 1"]
        return errors

    def after_create(self, sess: Session, record: Product, actor: Actor) -> None:
        """Give a new product a zero stock level in every warehouse."""
        for warehouse_id in sess.execute(select(Warehouse.id)).scalars():
            sess.add(StockLevel(product_id=record.id, warehouse_id=warehouse_id))


class WarehouseService(RecordService[Warehouse]):
    model = Warehouse
    entity = "warehouse"
    permission_view = "Warehouse"
    creatable = ("code", "name", "priority", "active")
    editable = creatable

    def defaults(self) -> dict[str, Any]:
        return {"priority": 10, "active": True}

    def validate(self, sess: Session, record: Warehouse, changed: set[str]):
        if record.priority is not None and record.priority < 1:
            return {"priority": ["must be at least 1"]}
        return {}

    def after_create(self, sess: Session, record: Warehouse, actor: Actor) -> None:
        """Give every product a zero stock level in a new warehouse."""
        for product_id in sess.execute(select(Product.id)).scalars():
            sess.add(StockLevel(product_id=product_id, warehouse_id=record.id))


def valid_incoterm(value: str | None) -> bool:
    return value is None or value in INCOTERMS


payment_terms = PaymentTermService()
price_lists = PriceListService()
price_list_items = PriceListItemService()
customers = CustomerService()
customer_addresses = CustomerAddressService()
customer_contacts = CustomerContactService()
products = ProductService()
warehouses = WarehouseService()
