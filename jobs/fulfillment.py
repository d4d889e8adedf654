"""Fulfilment jobs: filling backorders when stock arrives."""

from __future__ import annotations

import logging

from sqlalchemy import select

from jobs.context import app_job
from portal.extensions import db
from portal.models import Backorder, BackorderStatus, OrderLine
from portal.services import fulfillment
from portal.services.base import Actor

log = logging.getLogger(__name__)
ACTOR = Actor.system("job:fill_backorders")


@app_job
def fill_backorders(product_id: int) -> list[str]:
    """Allocate stock of one product to its open backorders; returns the lines filled."""
    return fulfillment.fill_backorders(product_id, ACTOR)


@app_job
def fill_all_backorders() -> dict[int, list[str]]:
    """Sweep every product with open backorders (the scheduled safety net)."""
    product_ids = db.session.execute(
        select(OrderLine.product_id)
        .join(Backorder, Backorder.order_line_id == OrderLine.id)
        .where(Backorder.status == BackorderStatus.OPEN.value)
        .distinct()
    ).scalars()
    return {
        product_id: fulfillment.fill_backorders(product_id, ACTOR) for product_id in product_ids
    }


def enqueue_fill(product_id: int) -> None:
    """Queue a fill after a receipt; if Redis is down the scheduled sweep catches up."""
    from jobs.queue import enqueue

    try:
        enqueue(fill_backorders, product_id)
    except Exception as error:  # Redis unreachable: the receipt itself must still succeed
        log.warning("could not queue backorder fill for product %s: %s", product_id, error)
