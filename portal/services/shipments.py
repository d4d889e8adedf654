"""Shipments after they left: carrier details, ETA, delay reason and delivery.

``update_shipment`` changes one shipment (the REST/UI edit), ``update_shipments`` many in
one transaction, each in a savepoint (``portal.services.transactions``: a tracker's bulk
edits), ``deliver`` records the delivery (the order is delivered when everything shipped
arrived). Shipping itself — allocation, picking the units — is ``portal.services.fulfillment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from portal.extensions import db
from portal.models import DELAY_REASONS, OrderStatus, Shipment, ShipmentStatus, utcnow
from portal.services import audit, invoices, notifications, states
from portal.services.base import (
    Actor,
    ConflictError,
    RecordService,
    ServiceError,
    ValidationFailed,
    check_version,
    require,
    unit_of_work,
)
from portal.services.limits import check_dates
from portal.services.transactions import each_in_savepoint, refusal

SHIPMENT_VIEW = "Shipment"


def deliver(shipment: Shipment, actor: Actor, delivered_date: date | None = None) -> Shipment:
    """Record delivery of a shipment; the order is delivered when everything shipped arrived."""
    require(actor, "can_write", SHIPMENT_VIEW, "record deliveries")
    if shipment.status == ShipmentStatus.DELIVERED.value:
        raise ConflictError(f"shipment {shipment.number} is already delivered")
    delivered_date = delivered_date or utcnow().date()
    if delivered_date > utcnow().date():
        raise ValidationFailed({"delivered_date": [f"{delivered_date} is in the future"]})
    check_dates(delivered_date=delivered_date)
    if delivered_date < shipment.ship_date:
        raise ValidationFailed({"delivered_date": ["is before the ship date"]})
    order = shipment.order
    with unit_of_work():
        shipment.status = ShipmentStatus.DELIVERED.value
        shipment.delivered_date = delivered_date
        for item in shipment.lines:
            item.order_line.qty_delivered += item.quantity
        db.session.flush()
        audit.record(
            actor,
            "shipment",
            shipment.id,
            "deliver",
            after={"delivered_date": delivered_date, "status": shipment.status},
        )
        everything_shipped = order.status == OrderStatus.SHIPPED.value
        all_arrived = all(line.qty_delivered == line.qty_shipped for line in order.lines)
        if everything_shipped and all_arrived:
            states.transition(order, OrderStatus.DELIVERED.value, actor)
            invoices.mark_invoiced_if_complete(order, actor)
        notifications.notify(order, "delivered", actor, shipment=shipment)
    return shipment


class ShipmentService(RecordService[Shipment]):
    """Edits of a shipment's carrier details, ETA and delay reason (e.g. from a tracker)."""

    model = Shipment
    entity = "shipment"
    permission_view = SHIPMENT_VIEW
    editable = ("carrier", "tracking_number", "eta", "delay_reason")

    def validate(self, sess: Any, record: Shipment, changed: set[str]) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if record.delay_reason is not None and record.delay_reason not in DELAY_REASONS:
            errors["delay_reason"] = [f"must be one of {', '.join(DELAY_REASONS)}"]
        if record.eta is not None and record.eta < record.ship_date:
            errors["eta"] = ["is before the ship date"]
        if record.is_late and not record.delay_reason:
            errors["delay_reason"] = ["the shipment is late: give a delay reason"]
        return errors


shipments = ShipmentService()


def update_shipment(
    shipment: Shipment,
    changes: Mapping[str, Any],
    actor: Actor,
    expected_version: int | None = None,
) -> Shipment:
    """Change carrier, tracking number, ETA, delay reason, or record delivery.

    A ``delivered_date`` in ``changes`` delivers the shipment through :func:`deliver`.
    """
    changes = dict(changes)
    delivered_date = changes.pop("delivered_date", None)
    check_version(shipment, expected_version)
    with unit_of_work():
        was_late = shipment.is_late
        if changes:
            shipments.update(shipment, changes, actor)
        if delivered_date is not None and shipment.delivered_date != delivered_date:
            deliver(shipment, actor, delivered_date)
        if shipment.is_late and not was_late and shipment.delay_reason:
            notifications.notify(
                shipment.order,
                "delayed",
                actor,
                shipment=shipment,
                delay_reason=DELAY_REASONS[shipment.delay_reason],
            )
    return shipment


def update_shipments(
    items: Sequence[tuple[Shipment, Mapping[str, Any]]], actor: Actor
) -> list[ServiceError | None]:
    """:func:`update_shipment` of each ``(shipment, changes)`` in the caller's unit of work,
    each in a savepoint: a refused edit (its error at its position; None: applied) is rolled
    back alone and the others stay. ``transactions.BatchBroken`` if the transaction ended."""

    def one(item: tuple[Shipment, Mapping[str, Any]]) -> None:
        update_shipment(item[0], item[1], actor)

    return [refusal(outcome) for outcome in each_in_savepoint(items, one)]


def arrives_late(eta: date | None, delivered_date: date | None, promised_date: date | None) -> bool:
    """Whether a shipment arrives (delivered, else its ETA) after the order's promised date."""
    arrival = delivered_date or eta
    return promised_date is not None and arrival is not None and arrival > promised_date
