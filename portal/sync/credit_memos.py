"""Credit memos in a tracker: read-only in the sheet (a Supervisor approves them in the
portal); a blank-key row requests a credit by amount against an invoice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from portal.models import CREDIT_REASONS, CreditMemo, CreditMemoStatus, Customer, Invoice
from portal.services import credits
from portal.services.base import Actor, ConflictError
from portal.sync.base import Field, Kind, fields_of, invoice_by_number
from sheets.trackers import Column


class CreditMemosKind(Kind):
    name = "credit_memos"
    entities = frozenset(("credit_memo", "invoice"))
    key_field = "number"
    key_header = "Credit memo"
    fields = fields_of(
        Field("invoice", creatable=True),
        Field("customer"),
        Field("reason_code", creatable=True),
        Field("reason_text", creatable=True),
        Field("amount", "decimal", creatable=True),
        Field("status"),
        Field("requested_by"),
        Field("decided_by"),
        Field("decided_at", "datetime"),
    )
    filters = {"pending": "credit memos waiting for approval"}
    can_create = True
    batch_updates = True  # Kind.update_many: a savepoint per edit, one transaction a batch
    choices = {"reason_code": tuple(CREDIT_REASONS)}
    preset = (
        Column("Invoice", "invoice", "text", "both"),
        Column("Customer", "customer", "text", "portal"),
        Column("Reason", "reason_code", "text", "both"),
        Column("Note", "reason_text", "text", "both"),
        Column("Amount", "amount", "decimal", "both"),
        Column("Status", "status", "text", "portal"),
        Column("Requested by", "requested_by", "text", "portal"),
        Column("Decided by", "decided_by", "text", "portal"),
    )
    columns = {
        "number": CreditMemo.number,
        "invoice": Invoice.number,
        "customer": Customer.code,
        "reason_code": CreditMemo.reason_code,
        "reason_text": CreditMemo.reason_text,
        "amount": CreditMemo.amount,
        "status": CreditMemo.status,
        "requested_by": CreditMemo.requested_by,
        "decided_by": CreditMemo.decided_by,
        "decided_at": CreditMemo.decided_at,
    }

    def query(self, filter: str | None) -> Select:
        query = (
            select(*self.columns.values())
            .join(Invoice, CreditMemo.invoice_id == Invoice.id)
            .join(Customer, Invoice.customer_id == Customer.id)
        )
        if filter == "pending":
            query = query.where(CreditMemo.status == CreditMemoStatus.REQUESTED.value)
        return query

    def touches(self, entity: str, ids: list[int]) -> ColumnElement[bool] | None:
        if entity == "credit_memo":
            return CreditMemo.id.in_(ids)
        return CreditMemo.invoice_id.in_(ids) if entity == "invoice" else None

    def left_filter(self, filter: str, entity: str, status: str) -> bool:
        # "pending": waiting for approval
        return entity == "credit_memo" and status == CreditMemoStatus.REQUESTED.value

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        raise ConflictError(
            f"credit memo {key} is approved or rejected in the portal; the sheet can't change it"
        )

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        self.check_fields(values, "creatable")
        memo = credits.request_credit(
            invoice_by_number(values.get("invoice")),
            actor,
            reason_code=values.get("reason_code") or "",
            amount=values.get("amount"),
            reason_text=values.get("reason_text"),
        )
        return memo.number
