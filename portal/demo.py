"""A realistic demo data set, loaded through the services (``orderbridge seed-demo``)."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from portal.auth import demo_passwords_allowed
from portal.demo_fates import order_days
from portal.demo_history import History
from portal.extensions import appbuilder, db
from portal.models import (
    Customer,
    Product,
    SalesOrder,
    Warehouse,
    utcnow,
)
from portal.security import ADMIN_ROLE, AUDITOR, SPECIALIST, SUPERVISOR
from portal.services import (
    audit,
    catalog,
    inventory,
)
from portal.services.base import Actor, unit_of_work

DEMO_USERS = {
    "specialist": SPECIALIST,
    "supervisor": SUPERVISOR,
    "auditor": AUDITOR,
    "admin": ADMIN_ROLE,
}

SEED_ACTOR = Actor.system("system:seed-demo")

PRODUCT_FAMILIES = [
    ("BOLT", "Hex bolt M{n} zinc", "box", 50, "0.18"),
    ("NUT", "Lock nut M{n}", "box", 100, "0.07"),
    ("WSH", "Flat washer {n} mm", "box", 200, "0.03"),
    ("CBL", "Cable tie {n}0 mm black", "bag", 100, "0.05"),
    ("GLV", "Nitrile gloves size {n}", "pack", 10, "4.90"),
    ("TAP", "Duct tape {n}0 m", "roll", 6, "7.40"),
    ("BRG", "Ball bearing 6{n}0", "ea", 1, "12.50"),
    ("FLT", "Air filter F{n}", "ea", 1, "23.00"),
]
CITIES = [
    ("Rotterdam", "3011", "NL"),
    ("Hamburg", "20095", "DE"),
    ("Lyon", "69001", "FR"),
    ("Leeds", "LS1 4AP", "GB"),
    ("Milan", "20121", "IT"),
    ("Chicago", "60601", "US"),
    ("Toronto", "M5H 2N2", "CA"),
]
COMPANY_WORDS = ["Atlas", "Beacon", "Cobalt", "Delta", "Evergreen", "Falcon", "Granite", "Harbor"]
COMPANY_KINDS = ["Supply", "Industrial", "Logistics", "Maintenance", "Engineering"]


def ensure_users(password: str) -> list[str]:
    """Create the four demo users (or reset their password); returns what was done."""
    sm = appbuilder.sm
    done = []
    # Demo passwords are set here, not by people: a weak one (``demo``) is allowed in demo
    # and test mode only; in production the password policy applies (portal/auth.py).
    with demo_passwords_allowed(), unit_of_work():
        _ensure_users(sm, password, done)
    return done


def _ensure_users(sm, password: str, done: list[str]) -> None:
    for username, role_name in DEMO_USERS.items():
        role = sm.find_role(role_name)
        user = sm.find_user(username=username)
        if user is None:
            sm.add_user(
                username=username,
                first_name=username.capitalize(),
                last_name="Demo",
                email=f"{username}@orderbridge.local",
                role=role,
                password=password,
            )
            audit.record(SEED_ACTOR, "user", username, "create", after={"role": role_name})
            done.append(f"created {username} ({role_name})")
        else:
            sm.reset_password(user.id, password)
            audit.record(SEED_ACTOR, "user", username, "reset_password")
            done.append(f"reset password of {username}")


def seed_demo_data(order_count: int = 300, seed: int = 7, today: date | None = None) -> bool:
    """Load master data, stock and twelve weeks of orders up to ``today`` (default: today);
    returns False if demo data was already there. The same ``seed`` gives the same data.

    Every record goes through the service a person would use (see ``demo_history``); the
    master data is one transaction, and each day of the history one more, whose orders are
    entered, confirmed, allocated and invoiced with the services' batch calls.
    """
    if db.session.execute(select(Customer.id).limit(1)).first() is not None:
        return False
    sess = db.session()
    # The seed is the database's only writer while it runs: what it commits stays loaded
    # instead of being read again after each day's commit.
    sess.expire_on_commit = False
    try:
        _seed(order_count, seed, today)
    finally:
        sess.expire_on_commit = True
    return True


def _seed(order_count: int, seed: int, today: date | None) -> None:
    rng = random.Random(seed)
    with unit_of_work():  # the master data and opening stock: one transaction
        customers, products, scarce = _master_data(rng, order_count)
    history = History(rng, _people(), customers, products, today or utcnow().date())
    history.scarce = scarce
    history.play(order_days(rng, order_count, history.today))
    with unit_of_work():
        audit.record(SEED_ACTOR, "demo", None, "seed", detail={"orders": order_count, "seed": seed})


def _master_data(
    rng: random.Random, order_count: int
) -> tuple[list[Customer], list[Product], set[int]]:
    """Payment terms, warehouses, products and prices, opening stock, customers."""
    terms = [
        catalog.payment_terms.create({"code": code, "name": name, "days": days}, SEED_ACTOR)
        for code, name, days in [
            ("DUE", "Due on receipt", 0),
            ("NET30", "Net 30", 30),
            ("NET45", "Net 45", 45),
            ("NET60", "Net 60", 60),
        ]
    ]
    warehouses = [
        catalog.warehouses.create({"code": code, "name": name, "priority": priority}, SEED_ACTOR)
        for code, name, priority in [
            ("RTM", "Rotterdam DC", 1),
            ("HAM", "Hamburg overflow", 2),
            ("CHI", "Chicago DC", 3),
        ]
    ]
    products: list[Product] = []
    for prefix, name, unit, pack, price in PRODUCT_FAMILIES:
        for size in (4, 6, 8, 10, 12):
            products.append(
                catalog.products.create(
                    {
                        "sku": f"{prefix}-{size:03d}",
                        "name": name.format(n=size),
                        "unit": unit,
                        "pack_size": pack,
                        "list_price": (Decimal(price) * (1 + Decimal(size) / 20)).quantize(
                            Decimal("0.0001")
                        ),
                        "lead_time_days": rng.choice([2, 3, 5, 7, 14]),
                    },
                    SEED_ACTOR,
                )
            )
    standard = catalog.price_lists.create({"name": "Standard", "currency": "USD"}, SEED_ACTOR)
    wholesale = catalog.price_lists.create({"name": "Wholesale", "currency": "USD"}, SEED_ACTOR)
    for product in products:
        for price_list, discounts in ((standard, (0, 5)), (wholesale, (8, 15))):
            for min_qty, pct in zip((1, product.pack_size * 20), discounts, strict=True):
                catalog.price_list_items.create(
                    {
                        "price_list_id": price_list.id,
                        "product_id": product.id,
                        "min_quantity": min_qty,
                        "unit_price": (product.list_price * (100 - pct) / 100).quantize(
                            Decimal("0.0001")
                        ),
                    },
                    SEED_ACTOR,
                )
    # Three products the supplier cannot deliver: their orders wait on backorder all along.
    scarce = {product.id for product in rng.sample(products, 3)}
    for product in products:
        for warehouse in warehouses:
            if rng.random() < 0.8 and product.id not in scarce:
                inventory.receive(
                    product.id,
                    warehouse.id,
                    product.pack_size * rng.randint(2, max(3, order_count)),
                    SEED_ACTOR,
                    reference="opening balance",
                )
    customers: list[Customer] = []
    for index in range(24):
        city, postal, country = CITIES[index % len(CITIES)]
        name = f"{COMPANY_WORDS[index % 8]} {COMPANY_KINDS[index % 5]} {city}"
        customer = catalog.customers.create(
            {
                "code": f"C{index + 1:04d}",
                "name": name,
                "email": f"orders@c{index + 1:04d}.example",
                "credit_limit": Decimal(rng.choice([5000, 10000, 25000, 50000, 100000])),
                "credit_hold": index % 11 == 10,
                "payment_term_id": rng.choice(terms[1:]).id,
                "price_list_id": (wholesale if index % 3 == 0 else standard).id,
            },
            SEED_ACTOR,
        )
        catalog.customer_addresses.create(
            {
                "customer_id": customer.id,
                "label": "Main warehouse",
                "line1": f"{rng.randint(1, 400)} Harbour Road",
                "city": city,
                "postal_code": postal,
                "country": country,
                "is_default_ship_to": True,
            },
            SEED_ACTOR,
        )
        catalog.customer_contacts.create(
            {
                "customer_id": customer.id,
                "name": f"Buyer {index + 1}",
                "email": f"buyer{index + 1}@c{index + 1:04d}.example",
                "role": "Purchasing",
            },
            SEED_ACTOR,
        )
        customers.append(customer)
    return customers, products, scarce


def _people() -> dict[str, Actor]:
    from portal.actors import actor_for_user

    return {
        name: actor_for_user(appbuilder.sm.find_user(username=name), "cli")
        for name in ("specialist", "supervisor")
    }


def demo_summary() -> dict[str, int]:
    """Counts of the main records, printed after seeding."""
    return {
        "customers": db.session.query(Customer).count(),
        "products": db.session.query(Product).count(),
        "warehouses": db.session.query(Warehouse).count(),
        "orders": db.session.query(SalesOrder).count(),
        **{
            f"orders {status}": count
            for status, count in db.session.query(SalesOrder.status, func.count())
            .group_by(SalesOrder.status)
            .order_by(SalesOrder.status)
        },
    }
