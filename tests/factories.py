"""Small, explicit test data built through the services (never inserted behind their back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from portal.models import Customer, Product, SalesOrder, Shipment, Warehouse, utcnow
from portal.services import catalog, fulfillment, inventory, lifecycle, orders
from portal.services.base import Actor

SETUP = Actor.system("system:test-setup")


@dataclass
class Catalog:
    customer: Customer
    products: list[Product]
    warehouses: list[Warehouse]


def make_catalog(stock: int = 100) -> Catalog:
    """One customer with an address and a contact, two warehouses, three products in stock."""
    term = catalog.payment_terms.create({"code": "NET30", "name": "Net 30", "days": 30}, SETUP)
    warehouses = [
        catalog.warehouses.create({"code": "W1", "name": "Main", "priority": 1}, SETUP),
        catalog.warehouses.create({"code": "W2", "name": "Overflow", "priority": 2}, SETUP),
    ]
    products = [
        catalog.products.create(
            {"sku": f"SKU-{n}", "name": f"Product {n}", "list_price": Decimal("9.50") * n}, SETUP
        )
        for n in (1, 2, 3)
    ]
    customer = catalog.customers.create(
        {
            "code": "C1",
            "name": "Acme Ltd",
            "credit_limit": Decimal("10000.00"),
            "payment_term_id": term.id,
        },
        SETUP,
    )
    catalog.customer_addresses.create(
        {
            "customer_id": customer.id,
            "line1": "1 Dock Street",
            "city": "Leeds",
            "postal_code": "LS1 1AA",
            "country": "GB",
            "is_default_ship_to": True,
        },
        SETUP,
    )
    catalog.customer_contacts.create(
        {"customer_id": customer.id, "name": "Ann Buyer", "email": "ann@acme.example"}, SETUP
    )
    if stock:
        for product in products:
            inventory.receive(product.id, warehouses[0].id, stock, SETUP, reference="test")
    return Catalog(customer, products, warehouses)


def shipped_order(
    data: Catalog,
    quantity: int = 10,
    *,
    customer_po: str | None = None,
    carrier: str = "DHL",
    tracking_number: str | None = None,
) -> tuple[SalesOrder, Shipment]:
    """A confirmed, allocated order of ``quantity`` units of the first product, all shipped."""
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": customer_po,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": quantity}],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    shipment = fulfillment.ship(
        order,
        SETUP,
        warehouse_id=data.warehouses[0].id,
        lines={order.lines[0].id: quantity},
        carrier=carrier,
        tracking_number=tracking_number,
    )
    return order, shipment
