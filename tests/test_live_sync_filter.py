"""Live sync follows a tracker's filter: a committed change asks for a sync only of the
trackers whose filter can hold the changed records — inside the filter now, or just moved out
of it — so a change to a closed order does not read every "open orders" tracker."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from jobs.live import covering_trackers
from portal.services import audit, changes, disputes, events, orders, trackers
from portal.services.base import unit_of_work
from tests.conftest import actor
from tests.factories import SETUP
from tests.sync_helpers import ADMIN, make_orders


@pytest.fixture
def announced(clean_db) -> Iterator[list[dict[str, Any]]]:
    """The ``records_changed`` payloads of the transactions committed during the test."""
    seen: list[dict[str, Any]] = []

    def capture(**payload: Any) -> None:
        seen.append(payload)

    events.subscribe(events.RECORDS_CHANGED, capture)
    yield seen
    events.unsubscribe(events.RECORDS_CHANGED, capture)


def _tracker(tmp_path, name: str, kind: str = "orders", filter: str | None = None) -> int:
    data = {"name": name, "kind": kind, "location": str(tmp_path / f"{name}.xlsx"), "tab": "T"}
    return trackers.trackers.create({**data, "filter": filter}, ADMIN).id


def _synced(announced: list[dict[str, Any]]) -> set[int]:
    """The trackers the last committed change asks to sync."""
    payload = announced[-1]
    return {t for t, _ in covering_trackers(payload["changed"], payload["records"])}


def test_a_change_syncs_only_the_trackers_whose_filter_can_hold_it(announced, tmp_path) -> None:
    made = make_orders(3)
    everything = _tracker(tmp_path, "all-orders")
    open_orders = _tracker(tmp_path, "open-orders", filter="open")
    open_lines = _tracker(tmp_path, "open-lines", "order_lines", filter="open")
    changes.cancel_order(made[0], SETUP, "customer_request")
    # the cancellation moved the order out of "open": every tracker of orders and lines syncs
    assert _synced(announced) == {everything, open_orders, open_lines}

    orders.orders.update(made[1], {"notes": "an open order"}, SETUP)
    assert _synced(announced) == {everything, open_orders, open_lines}

    _note(made[0].id)  # a change recorded on the cancelled order
    assert _synced(announced) == {everything}  # closed: no "open" tracker can hold it

    orders.orders.update(made[2], {"notes": "open"}, SETUP)
    assert _synced(announced) == {everything, open_orders, open_lines}
    _note(made[0].id)
    assert _synced(announced) == {everything}  # one transaction each


def _note(order_id: int) -> None:
    """A change recorded on an order, as a service records it (in a unit of work)."""
    with unit_of_work():
        audit.record(SETUP, "sales_order", order_id, "note", detail={"note": "checked"})


def test_a_dispute_leaving_the_open_filter_syncs_it_then_no_more(announced, tmp_path) -> None:
    from tests.test_sync_bulk_kinds import _invoice

    invoice = _invoice()
    open_disputes = _tracker(tmp_path, "open-disputes", "disputes", filter="open")
    every_dispute = _tracker(tmp_path, "every-dispute", "disputes")
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="pricing", amount=Decimal("1.00")
    )
    assert _synced(announced) == {open_disputes, every_dispute}
    disputes.set_status(dispute, "rejected", actor("supervisor"), reason="not ours")
    assert _synced(announced) == {open_disputes, every_dispute}  # it left "open"
    with unit_of_work():  # a change recorded on the rejected dispute
        audit.record(SETUP, "dispute", dispute.id, "note", detail={"note": "checked"})
    assert _synced(announced) == {every_dispute}


def test_without_the_changed_records_every_tracker_of_the_kind_syncs(tmp_path, clean_db) -> None:
    make_orders(1)
    everything = _tracker(tmp_path, "all-orders")
    open_orders = _tracker(tmp_path, "open-orders", filter="open")
    pairs = [("sales_order", "system:test-setup")]
    assert {t for t, _ in covering_trackers(pairs)} == {everything, open_orders}
