"""Background work started by what the services announce (``portal.services.events``).

:func:`register` runs at start-up in every process that writes (``create_app`` calls it), so
a receipt queues its backorder fill, a new outbox message its sending and a change to records
a tracker holds a debounced sync of that tracker (``jobs.live``), after the commit.
"""

from __future__ import annotations

from jobs.fulfillment import enqueue_fill
from jobs.notify import enqueue_send
from portal.services import events


def fill_after_receipt(product_id: int, open_backorders: bool) -> None:
    """Queue a backorder fill for the received product when it has open backorders."""
    if open_backorders:
        enqueue_fill(product_id)


def sync_after_change(
    changed: tuple[tuple[str, str], ...], records: tuple[tuple[str, str, str, str], ...] = ()
) -> None:
    """Schedule the debounced sync of the trackers holding what changed (``jobs.live``,
    imported here so that commands which never commit such a change do not load Redis)."""
    from jobs.live import on_records_changed

    on_records_changed(changed, records)


def register() -> None:
    """Subscribe the handlers (idempotent)."""
    events.subscribe(events.STOCK_RECEIVED, fill_after_receipt)
    events.subscribe(events.NOTIFICATION_QUEUED, enqueue_send)
    events.subscribe(events.RECORDS_CHANGED, sync_after_change)
