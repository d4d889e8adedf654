"""``orderbridge stock receive``: a goods receipt from the command line.

The same service as the browser and the API (``receipts.record_receipt``); the actor is
``system:cli`` (as the other CLI writes), or ``--user NAME``, whose roles must allow it.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

CLI_ACTOR = "system:cli"


@click.group("stock", help="Stock: goods receipts.")
def stock() -> None:
    pass


def _id_of(model: type, column: str, value: str, label: str) -> int:
    from portal.extensions import db

    found = db.session.execute(
        select(model.id).where(getattr(model, column) == value)
    ).scalar_one_or_none()
    if found is None:
        raise click.ClickException(f"no {label} {value}")
    return found


@stock.command("receive")
@click.option("--sku", required=True, help="The product's SKU.")
@click.option("--warehouse", "warehouse_code", required=True, help="The warehouse's code.")
@click.option("--quantity", required=True, type=click.IntRange(min=1), help="Units received.")
@click.option("--reference", help="Purchase order or delivery note reference.")
@click.option("--note", help="A note on the receipt.")
@click.option("--user", "username", help=f"Receive as this user (default: {CLI_ACTOR}).")
@with_appcontext
def receive(
    sku: str,
    warehouse_code: str,
    quantity: int,
    reference: str | None,
    note: str | None,
    username: str | None,
) -> None:
    """Receive stock of a product into a warehouse; prints the receipt and what it fills."""
    from portal.actors import actor_for_user
    from portal.extensions import appbuilder
    from portal.models import Product, Warehouse
    from portal.services import receipts
    from portal.services.base import Actor, ServiceError

    if username:
        user = appbuilder.sm.find_user(username=username)
        if user is None:
            raise click.ClickException(f"no user {username}")
        actor = actor_for_user(user, "cli")
    else:
        actor = Actor.system(CLI_ACTOR)
    product_id = _id_of(Product, "sku", sku, "product with SKU")
    warehouse_id = _id_of(Warehouse, "code", warehouse_code, "warehouse with code")
    try:
        received = receipts.record_receipt(
            product_id, warehouse_id, quantity, actor, reference=reference, note=note
        )
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(received.summary())
