"""Goods receipts: the record, the ledger, the audit trail and the backorders it fills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from jobs import queue
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Backorder,
    InventoryMovement,
    SalesOrder,
    StockReceipt,
    utcnow,
)
from portal.services import catalog, fulfillment, inventory, lifecycle, orders, receipts
from portal.services.base import PermissionDenied, ValidationFailed
from tests.conftest import REPO, actor
from tests.factories import SETUP, make_catalog


def backordered_order(data, po: str, quantity: int = 10) -> SalesOrder:
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": po,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": quantity}],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    return order


def run_worker_burst() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portal.cli", "worker", "--burst", "--no-scheduler"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_a_receipt_is_a_numbered_record_booked_through_the_ledger_and_audited(clean_db) -> None:
    data = make_catalog(stock=0)
    product, warehouse = data.products[1], data.warehouses[1]
    received = receipts.record_receipt(
        product.id,
        warehouse.id,
        120,
        actor("specialist"),
        reference=" PO-4471 ",
        note="two pallets",
    )
    receipt = received.receipt
    assert receipt.number == "GR-000001"
    assert (receipt.quantity, receipt.reference, receipt.note) == (120, "PO-4471", "two pallets")
    assert receipt.received_by == "specialist"
    assert receipt.received_at.tzinfo is not None
    assert received.to_fill == []
    assert inventory.stock_level(product.id, warehouse.id).on_hand == 120
    movement = db.session.query(InventoryMovement).filter_by(reference="GR-000001").one()
    assert (movement.kind, movement.on_hand_delta, movement.actor) == ("receipt", 120, "specialist")
    assert inventory.ledger_discrepancies() == []
    event = db.session.query(AuditEvent).filter_by(entity="stock_receipt").one()
    assert (event.entity_id, event.action, event.actor) == (str(receipt.id), "create", "specialist")
    assert json.loads(event.changes)["after"]["quantity"] == 120
    assert db.session.query(AuditEvent).filter_by(entity="stock_level", action="receive").count()
    assert "no backorders were waiting" in received.summary()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -3}, "quantity"),
        ({"quantity": 2.5}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"product_id": 999999}, "product_id"),
        ({"warehouse_id": 999999}, "warehouse_id"),
        ({"reference": "x" * 81}, "reference"),
    ],
)
def test_bad_input_is_refused_per_field_and_nothing_is_written(clean_db, change, field) -> None:
    data = make_catalog(stock=0)
    args = {
        "product_id": data.products[0].id,
        "warehouse_id": data.warehouses[0].id,
        "quantity": 5,
        "reference": None,
    }
    args.update(change)
    with pytest.raises(ValidationFailed) as refused:
        receipts.record_receipt(
            args["product_id"],
            args["warehouse_id"],
            args["quantity"],
            actor("specialist"),
            reference=args["reference"],
        )
    assert field in refused.value.field_errors
    assert db.session.query(StockReceipt).count() == 0
    assert inventory.stock_level(data.products[0].id, data.warehouses[0].id).on_hand == 0


def test_an_inactive_product_is_refused(clean_db) -> None:
    data = make_catalog(stock=0)
    product = data.products[0]
    catalog.products.update(product, {"active": False}, SETUP)
    with pytest.raises(ValidationFailed) as refused:
        receipts.record_receipt(product.id, data.warehouses[0].id, 5, actor("specialist"))
    assert refused.value.field_errors == {"product_id": ["SKU-1 is not active"]}


def test_an_auditor_may_not_receive_stock(clean_db) -> None:
    data = make_catalog(stock=0)
    with pytest.raises(PermissionDenied):
        receipts.record_receipt(data.products[0].id, data.warehouses[0].id, 5, actor("auditor"))
    assert db.session.query(StockReceipt).count() == 0


def test_a_receipt_fills_the_oldest_waiting_backorder_after_commit_with_a_real_worker(
    clean_db,
) -> None:
    """No scheduler: the receipt's announcement queues the fill; a burst worker runs it."""
    default = queue.get_queue("default")
    default.empty()
    data = make_catalog(stock=0)
    first = backordered_order(data, "PO-OLD")
    second = backordered_order(data, "PO-NEW")
    received = receipts.record_receipt(
        data.products[0].id, data.warehouses[0].id, 10, actor("specialist")
    )
    assert received.to_fill == [f"{first.number}/1"]
    assert f"1 backorder will be filled: {first.number}/1" in received.summary()
    assert [job.func_name for job in default.jobs] == ["jobs.fulfillment.fill_backorders"]
    run_worker_burst()
    db.session.expire_all()
    by_order = {
        backorder.order_line.order_id: backorder.status for backorder in db.session.query(Backorder)
    }
    assert by_order == {first.id: "filled", second.id: "open"}
    assert first.lines[0].qty_allocated == 10
    assert second.lines[0].qty_allocated == 0
    assert inventory.ledger_discrepancies() == []
