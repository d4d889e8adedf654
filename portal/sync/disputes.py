"""Disputes in a tracker: owner, amount, due date and description edited in the sheet; the
status column moves a dispute (``disputes.set_status``, with root cause and corrective action
from the same row); a blank-key row opens a dispute on an invoice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from portal.extensions import db
from portal.models import (
    DISPUTE_TYPES,
    ROOT_CAUSES,
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    utcnow,
)
from portal.services import disputes
from portal.services.base import Actor, NotFound, unit_of_work
from portal.sync.base import Field, Kind, Row, fields_of, invoice_by_number, rows_by_key
from sheets.trackers import Column


class DisputesKind(Kind):
    name = "disputes"
    entities = frozenset(("dispute",))
    key_field = "number"
    key_header = "Dispute"
    fields = fields_of(
        Field("invoice", creatable=True),
        Field("customer"),
        Field("dispute_type", creatable=True),
        Field("amount", "decimal", editable=True, creatable=True),
        Field("owner", editable=True, creatable=True),
        Field("due_date", "date", editable=True),
        Field("status", editable=True),
        Field("overdue", "bool"),
        Field("root_cause", editable=True),
        Field("corrective_action", editable=True),
        Field("description", editable=True, creatable=True),
    )
    filters = {"open": "disputes not yet resolved or rejected"}
    can_create = True
    batch_updates = True  # Kind.update_many: a savepoint per edit, one transaction a batch
    choices = {
        "dispute_type": tuple(DISPUTE_TYPES),
        "status": tuple(status.value for status in DisputeStatus),
        "root_cause": tuple(ROOT_CAUSES),
    }
    preset = (
        Column("Invoice", "invoice", "text", "both"),
        Column("Customer", "customer", "text", "portal"),
        Column("Type", "dispute_type", "text", "both"),
        Column("Amount", "amount", "decimal", "both"),
        Column("Owner", "owner", "text", "both"),
        Column("Due", "due_date", "date", "both"),
        Column("Status", "status", "text", "both"),
        Column("Overdue", "overdue", "bool", "portal"),
        Column("Root cause", "root_cause", "text", "both"),
        Column("Corrective action", "corrective_action", "text", "both"),
    )
    columns = {
        "number": Dispute.number,
        "invoice": Invoice.number,
        "customer": Customer.code,
        "dispute_type": Dispute.dispute_type,
        "amount": Dispute.amount,
        "owner": Dispute.owner,
        "due_date": Dispute.due_date,
        "status": Dispute.status,
        "root_cause": Dispute.root_cause,
        "corrective_action": Dispute.corrective_action,
        "description": Dispute.description,
    }

    def query(self, filter: str | None) -> Select:
        query = (
            select(*self.columns.values())
            .join(Invoice, Dispute.invoice_id == Invoice.id)
            .join(Customer, Invoice.customer_id == Customer.id)
        )
        if filter == "open":
            open_ = (DisputeStatus.OPEN.value, DisputeStatus.INVESTIGATING.value)
            query = query.where(Dispute.status.in_(open_))
        return query

    def touches(self, entity: str, ids: list[int]) -> ColumnElement[bool] | None:
        return Dispute.id.in_(ids) if entity == "dispute" else None

    def left_filter(self, filter: str, entity: str, status: str) -> bool:
        # "open": open or investigating
        return status in (DisputeStatus.OPEN.value, DisputeStatus.INVESTIGATING.value)

    def records(
        self, filter: str | None, wanted: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, Row]:
        today = utcnow().date()

        def overdue(row: Row) -> None:
            row["overdue"] = disputes.is_overdue(row["status"], row["due_date"], today)

        names = list(self.columns)
        return rows_by_key(self.query(filter), names, self.key_field, keys, self.narrow, overdue)

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        dispute = db.session.execute(
            select(Dispute).where(Dispute.number == key)
        ).scalar_one_or_none()
        if dispute is None:
            raise NotFound(f"dispute {key} does not exist")
        changes = dict(changes)
        status = changes.pop("status", None) or dispute.status
        moves = {
            name: (changes.pop(name) or "")
            for name in ("root_cause", "corrective_action")
            if name in changes
        }
        with unit_of_work():
            fields = {k: v for k, v in changes.items() if v != getattr(dispute, k)}
            if fields:
                disputes.disputes.update(dispute, fields, actor)
            disputes.set_status(
                dispute, status, actor, reason=f"rejected in tracker {tracker_name}", **moves
            )

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        self.check_fields(values, "creatable")
        dispute = disputes.open_dispute(
            invoice_by_number(values.get("invoice")),
            actor,
            dispute_type=values.get("dispute_type") or "",
            amount=values.get("amount"),
            description=values.get("description"),
            owner=values.get("owner"),
        )
        return dispute.number
