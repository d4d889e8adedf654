"""Auditor exports of invoices, credit memos, disputes and audit events (CSV and XLSX).

Rows are read with a server-side cursor in batches (``yield_per``) and written as they come:
CSV as a generator of encoded chunks, XLSX with XlsxWriter in ``constant_memory`` mode
(bold frozen header, autofilter, column widths, typed cells: numbers, money with two
decimals, dates; text inline, no shared-string table). Memory stays flat whatever the number
of rows.

Formula injection: a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return is neutralised — in CSV it gets a leading single quote; in XLSX it is written as a
text cell (never a formula, with Excel's quote prefix) so no spreadsheet evaluates it.

Every export is itself an audit event (action ``export`` on the exported kind) recording
who, the format, the filters and the number of rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select

import portal.security as security
from portal.models import (
    AuditEvent,
    CreditMemo,
    CreditMemoStatus,
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceStatus,
    SalesOrder,
    Shipment,
)
from portal.services import audit
from portal.services.base import (
    Actor,
    PermissionDenied,
    ValidationFailed,
    session,
    unit_of_work,
)

FORMATS = ("csv", "xlsx")
DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DIGIT_PIXELS = 7  # a column ``width`` characters wide is that many digits (Calibri 11)


@dataclass(frozen=True)
class Column:
    """One exported column: the row field it shows, header, cell type (text, int, money,
    date, datetime) and width."""

    field: str
    header: str
    kind: str = "text"
    width: int = 14


@dataclass(frozen=True)
class Filters:
    """Date range (inclusive, by the kind's own date) and status of an export."""

    date_from: date | None = None
    date_to: date | None = None
    status: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "status": self.status,
        }


@dataclass(frozen=True)
class ExportKind:
    """What one export reads: its columns, query, date column and the statuses it accepts."""

    name: str
    title: str
    permission_view: str
    columns: tuple[Column, ...]
    statuses: tuple[str, ...]
    query: Callable[[], Select]
    date_column: Any
    is_datetime: bool
    status_column: Any
    rows: Callable[[list[Any]], Iterable[dict[str, Any]]]


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# -- invoices --------------------------------------------------------------------------------


def _invoice_query() -> Select:
    return (
        select(
            Invoice.number.label("invoice"),
            Invoice.status.label("status"),
            Customer.code.label("customer_code"),
            Customer.name.label("customer"),
            SalesOrder.number.label("order"),
            Shipment.number.label("shipment"),
            Invoice.issue_date.label("issue_date"),
            Invoice.due_date.label("due_date"),
            Invoice.currency.label("currency"),
            Invoice.subtotal.label("subtotal"),
            Invoice.tax_rate.label("tax_rate"),
            Invoice.tax_amount.label("tax"),
            Invoice.total.label("total"),
            Invoice.amount_paid.label("paid"),
            Invoice.amount_credited.label("credited"),
            Invoice.issued_by.label("issued_by"),
            Invoice.issued_at.label("issued_at"),
            Invoice.voided_by.label("voided_by"),
            Invoice.void_reason.label("void_reason"),
        )
        .join(Customer, Invoice.customer_id == Customer.id)
        .join(SalesOrder, Invoice.order_id == SalesOrder.id)
        .outerjoin(Shipment, Invoice.shipment_id == Shipment.id)
        .order_by(Invoice.id)
    )


def _invoice_rows(batch: list[Any]) -> Iterable[dict[str, Any]]:
    for row in batch:
        values = dict(row._mapping)
        values["balance"] = values["total"] - values["paid"] - values["credited"]  # exact
        values["issued_at"] = _utc(values["issued_at"])
        yield values


INVOICE_COLUMNS = (
    Column("invoice", "Invoice", width=14),
    Column("status", "Status", width=14),
    Column("customer_code", "Customer code", width=14),
    Column("customer", "Customer", width=28),
    Column("order", "Order", width=12),
    Column("shipment", "Shipment", width=12),
    Column("issue_date", "Issue date", "date", 12),
    Column("due_date", "Due date", "date", 12),
    Column("currency", "Currency", width=9),
    Column("subtotal", "Subtotal", "money", 14),
    Column("tax_rate", "Tax rate", "rate", 9),
    Column("tax", "Tax", "money", 12),
    Column("total", "Total", "money", 14),
    Column("paid", "Paid", "money", 14),
    Column("credited", "Credited", "money", 14),
    Column("balance", "Balance", "money", 14),
    Column("issued_by", "Issued by", width=14),
    Column("issued_at", "Issued at (UTC)", "datetime", 20),
    Column("voided_by", "Voided by", width=14),
    Column("void_reason", "Void reason", width=30),
)


# -- credit memos ----------------------------------------------------------------------------


def _credit_query() -> Select:
    return (
        select(
            CreditMemo.number.label("credit_memo"),
            CreditMemo.status.label("status"),
            Invoice.number.label("invoice"),
            Customer.code.label("customer_code"),
            CreditMemo.reason_code.label("reason"),
            CreditMemo.reason_text.label("reason_text"),
            CreditMemo.amount.label("amount"),
            CreditMemo.requested_by.label("requested_by"),
            CreditMemo.requested_at.label("requested_at"),
            CreditMemo.decided_by.label("decided_by"),
            CreditMemo.decided_at.label("decided_at"),
            CreditMemo.decision_note.label("decision_note"),
            Dispute.number.label("dispute"),
        )
        .join(Invoice, CreditMemo.invoice_id == Invoice.id)
        .join(Customer, Invoice.customer_id == Customer.id)
        .outerjoin(Dispute, CreditMemo.dispute_id == Dispute.id)
        .order_by(CreditMemo.id)
    )


def _credit_rows(batch: list[Any]) -> Iterable[dict[str, Any]]:
    for row in batch:
        values = dict(row._mapping)
        status, decided_by = values["status"], values["decided_by"]
        values["requested_at"] = _utc(values["requested_at"])
        values["decided_at"] = _utc(values["decided_at"])
        values["approved_by"] = decided_by if status == CreditMemoStatus.APPROVED.value else None
        values["rejected_by"] = decided_by if status == CreditMemoStatus.REJECTED.value else None
        yield values


CREDIT_COLUMNS = (
    Column("credit_memo", "Credit memo", width=14),
    Column("status", "Status", width=11),
    Column("invoice", "Invoice", width=14),
    Column("customer_code", "Customer code", width=14),
    Column("reason", "Reason", width=16),
    Column("reason_text", "Reason text", width=30),
    Column("amount", "Amount", "money", 14),
    Column("requested_by", "Requested by", width=14),
    Column("requested_at", "Requested at (UTC)", "datetime", 20),
    Column("approved_by", "Approved by", width=14),
    Column("rejected_by", "Rejected by", width=14),
    Column("decided_at", "Decided at (UTC)", "datetime", 20),
    Column("decision_note", "Decision note", width=30),
    Column("dispute", "Dispute", width=12),
)


# -- disputes (with their history) -----------------------------------------------------------


def _dispute_query() -> Select:
    return (
        select(
            Dispute.id.label("id"),
            Dispute.number.label("dispute"),
            Dispute.status.label("status"),
            Invoice.number.label("invoice"),
            Customer.code.label("customer_code"),
            Dispute.dispute_type.label("type"),
            Dispute.amount.label("amount"),
            Dispute.owner.label("owner"),
            Dispute.opened_by.label("opened_by"),
            Dispute.opened_at.label("opened_at"),
            Dispute.due_date.label("due_date"),
            Dispute.root_cause.label("root_cause"),
            Dispute.corrective_action.label("corrective_action"),
            Dispute.resolution_note.label("resolution_note"),
            Dispute.closed_by.label("closed_by"),
            Dispute.closed_at.label("closed_at"),
        )
        .join(Invoice, Dispute.invoice_id == Invoice.id)
        .join(Customer, Invoice.customer_id == Customer.id)
        .order_by(Dispute.id)
    )


def _history(entity: str, ids: list[int]) -> dict[str, list[str]]:
    """Each record's audit events as one line per event: when, who, what."""
    events = session().execute(
        select(AuditEvent.entity_id, AuditEvent.occurred_at, AuditEvent.actor, AuditEvent.action)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id.in_([str(i) for i in ids]))
        .order_by(AuditEvent.id)
    )
    history: dict[str, list[str]] = {}
    for entity_id, at, who, action in events:
        stamp = _utc(at).strftime("%Y-%m-%d %H:%M")
        history.setdefault(entity_id, []).append(f"{stamp} {who} {action}")
    return history


def _dispute_rows(batch: list[Any]) -> Iterable[dict[str, Any]]:
    history = _history("dispute", [row.id for row in batch])
    today = datetime.now(UTC).date()
    for row in batch:
        values = dict(row._mapping)
        closed = values["status"] in (DisputeStatus.RESOLVED.value, DisputeStatus.REJECTED.value)
        values["overdue"] = "yes" if not closed and values["due_date"] < today else "no"
        values["opened_at"] = _utc(values["opened_at"])
        values["closed_at"] = _utc(values["closed_at"])
        values["history"] = "\n".join(history.get(str(values["id"]), []))
        yield values


DISPUTE_COLUMNS = (
    Column("dispute", "Dispute", width=12),
    Column("status", "Status", width=13),
    Column("invoice", "Invoice", width=14),
    Column("customer_code", "Customer code", width=14),
    Column("type", "Type", width=16),
    Column("amount", "Amount", "money", 14),
    Column("owner", "Owner", width=14),
    Column("opened_by", "Opened by", width=14),
    Column("opened_at", "Opened at (UTC)", "datetime", 20),
    Column("due_date", "Due date", "date", 12),
    Column("root_cause", "Root cause", width=16),
    Column("corrective_action", "Corrective action", width=30),
    Column("resolution_note", "Resolution note", width=30),
    Column("closed_by", "Closed by", width=14),
    Column("closed_at", "Closed at (UTC)", "datetime", 20),
    Column("overdue", "Overdue", width=9),
    Column("history", "History", width=50),
)


# -- audit events ----------------------------------------------------------------------------


def _audit_query() -> Select:
    return select(
        AuditEvent.id.label("event"),
        AuditEvent.occurred_at.label("occurred_at"),
        AuditEvent.actor.label("actor"),
        AuditEvent.source.label("source"),
        AuditEvent.entity.label("entity"),
        AuditEvent.entity_id.label("entity_id"),
        AuditEvent.action.label("action"),
        AuditEvent.changes.label("changes"),
        AuditEvent.prev_hash.label("previous_hash"),
        AuditEvent.hash.label("hash"),
    ).order_by(AuditEvent.id)


def _audit_rows(batch: list[Any]) -> Iterable[dict[str, Any]]:
    for row in batch:
        values = dict(row._mapping)
        values["occurred_at"] = _utc(values["occurred_at"])
        yield values


AUDIT_COLUMNS = (
    Column("event", "Event", "int", 9),
    Column("occurred_at", "Occurred at (UTC)", "datetime", 20),
    Column("actor", "Actor", width=16),
    Column("source", "Source", width=12),
    Column("entity", "Entity", width=14),
    Column("entity_id", "Entity id", width=10),
    Column("action", "Action", width=16),
    Column("changes", "Changes", width=60),
    Column("previous_hash", "Previous hash", width=20),
    Column("hash", "Hash", width=20),
)

KINDS: dict[str, ExportKind] = {
    "invoice": ExportKind(
        "invoice",
        "Invoices",
        security.INVOICES,
        INVOICE_COLUMNS,
        tuple(s.value for s in InvoiceStatus),
        _invoice_query,
        Invoice.issue_date,
        False,
        Invoice.status,
        _invoice_rows,
    ),
    "credit_memo": ExportKind(
        "credit_memo",
        "Credit memos",
        security.CREDIT_MEMOS,
        CREDIT_COLUMNS,
        tuple(s.value for s in CreditMemoStatus),
        _credit_query,
        CreditMemo.requested_at,
        True,
        CreditMemo.status,
        _credit_rows,
    ),
    "dispute": ExportKind(
        "dispute",
        "Disputes",
        security.DISPUTES,
        DISPUTE_COLUMNS,
        tuple(s.value for s in DisputeStatus),
        _dispute_query,
        Dispute.opened_at,
        True,
        Dispute.status,
        _dispute_rows,
    ),
    "audit_event": ExportKind(
        "audit_event",
        "Audit events",
        security.AUDIT,
        AUDIT_COLUMNS,
        (),
        _audit_query,
        AuditEvent.occurred_at,
        True,
        None,
        _audit_rows,
    ),
}


# -- requests --------------------------------------------------------------------------------


def parse_request(
    kind_name: str, fmt: str | None, date_from: str | None, date_to: str | None, status: str | None
) -> tuple[ExportKind, str, Filters]:
    """Check an export request's parameters; field-level ``ValidationFailed`` otherwise."""
    errors: dict[str, list[str]] = {}
    kind = KINDS.get(kind_name)
    if kind is None:
        raise ValidationFailed({"kind": [f"must be one of {', '.join(KINDS)}"]})
    fmt = (fmt or "csv").lower()
    if fmt not in FORMATS:
        errors["format"] = [f"must be one of {', '.join(FORMATS)}"]
    dates: dict[str, date | None] = {}
    for name, raw in (("from", date_from), ("to", date_to)):
        try:
            dates[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            errors[name] = ["must be a date as YYYY-MM-DD"]
    if dates.get("from") and dates.get("to") and dates["from"] > dates["to"]:
        errors["to"] = ["is before from"]
    if status:
        if not kind.statuses:
            errors["status"] = [f"{kind.title.lower()} have no status to filter by"]
        elif status not in kind.statuses:
            errors["status"] = [f"must be one of {', '.join(kind.statuses)}"]
    if errors:
        raise ValidationFailed(errors)
    return kind, fmt, Filters(dates.get("from"), dates.get("to"), status or None)


def _filtered(kind: ExportKind, query: Select, filters: Filters) -> Select:
    column = kind.date_column
    if filters.date_from:
        start = (
            datetime.combine(filters.date_from, time(), UTC)
            if kind.is_datetime
            else filters.date_from
        )
        query = query.where(column >= start)
    if filters.date_to:
        if kind.is_datetime:
            end = datetime.combine(filters.date_to + timedelta(days=1), time(), UTC)
            query = query.where(column < end)
        else:
            query = query.where(column <= filters.date_to)
    if filters.status and kind.status_column is not None:
        query = query.where(kind.status_column == filters.status)
    return query


def count(kind: ExportKind, filters: Filters) -> int:
    """How many rows the export will have."""
    query = _filtered(kind, kind.query(), filters).order_by(None)
    return session().execute(select(func.count()).select_from(query.subquery())).scalar_one()


def rows(kind: ExportKind, filters: Filters) -> Iterator[tuple]:
    """The export's rows in order (values in column order), read in batches from a
    server-side cursor."""
    query = _filtered(kind, kind.query(), filters).execution_options(yield_per=BATCH)
    result = session().execute(query)
    for batch in result.partitions():
        for values in kind.rows(batch):
            yield tuple(values[column.field] for column in kind.columns)


def authorise(kind: ExportKind, actor: Actor) -> None:
    """Refuse an actor without ``can_export`` on the kind (Supervisor, Auditor, Admin)."""
    if not actor.can("can_export", kind.permission_view):
        raise PermissionDenied(f"{actor.name} may not export {kind.title.lower()}")


def record_export(
    actor: Actor, kind: ExportKind, fmt: str, filters: Filters, row_count: int, **detail: Any
) -> None:
    """Append the export's own audit event (committed at once)."""
    with unit_of_work():
        audit.record(
            actor,
            kind.name,
            None,
            "export",
            detail={"format": fmt, **filters.as_dict(), "rows": row_count, **detail},
        )


# -- writers ---------------------------------------------------------------------------------


def neutralise(value: str) -> str:
    """A CSV cell that a spreadsheet will not evaluate: quote-prefix dangerous text."""
    return "'" + value if value.startswith(DANGEROUS_PREFIXES) else value


def _csv_value(value: Any, column: Column) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return neutralise(value)
    return value


def csv_chunks(
    kind: ExportKind, data: Iterable[tuple], progress: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """The export as CSV (UTF-8 with a BOM, so Excel reads it right), in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.header for column in kind.columns])
    yield ("\ufeff" + buffer.getvalue()).encode()
    buffer.seek(0)
    buffer.truncate()
    done = 0
    for row in data:
        writer.writerow([_csv_value(v, c) for v, c in zip(row, kind.columns, strict=True)])
        done += 1
        if done % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if progress:
                progress(done)
    yield buffer.getvalue().encode()
    if progress:
        progress(done)


XLSX_CELL_LIMIT = 32767  # characters an Excel cell holds


def fit_in_a_cell(text: str) -> str:
    """``text``, or when longer than an Excel cell holds, its start and a note saying so (the
    CSV export has it whole): never cut without a word."""
    if len(text) <= XLSX_CELL_LIMIT:
        return text
    note = (
        f" … [cut at Excel's {XLSX_CELL_LIMIT:,}-character cell limit: {len(text):,} "
        "characters in all; the CSV export has them all]"
    )
    return text[: XLSX_CELL_LIMIT - len(note)] + note


def write_xlsx(
    kind: ExportKind,
    data: Iterable[tuple],
    target: Path | io.BufferedIOBase,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the export to ``target`` with XlsxWriter in ``constant_memory`` mode (each row
    goes to disk once the next begins); returns the row count."""
    from xlsxwriter import Workbook  # loads with an export, not at start-up

    with Workbook(target, {"constant_memory": True}) as workbook:
        sheet = workbook.add_worksheet(kind.title)
        bold = workbook.add_format({"bold": True})
        quoted = workbook.add_format({"quote_prefix": True})  # Excel keeps it text if edited
        money = workbook.add_format({"num_format": MONEY_FORMAT})
        day = workbook.add_format({"num_format": DATE_FORMAT})
        moment = workbook.add_format({"num_format": DATETIME_FORMAT})
        for index, column in enumerate(kind.columns):
            # ``width`` characters of 7 pixels: the file says exactly ``width``
            sheet.set_column_pixels(index, index, column.width * DIGIT_PIXELS)
            sheet.write_string(0, index, column.header, bold)
        sheet.freeze_panes(1, 0)
        done = 0
        for done, row in enumerate(data, start=1):
            for index, (value, column) in enumerate(zip(row, kind.columns, strict=True)):
                if value is None or value == "":
                    continue  # no cell: None and empty text alike
                if isinstance(value, str):
                    # text, never a formula; quoted when a spreadsheet would evaluate it
                    style = quoted if value.startswith(DANGEROUS_PREFIXES) else None
                    sheet.write_string(done, index, fit_in_a_cell(value), style)
                elif column.kind == "money":
                    sheet.write_number(done, index, value, money)
                elif isinstance(value, datetime):
                    sheet.write_datetime(done, index, value.replace(tzinfo=None), moment)
                elif isinstance(value, date):
                    sheet.write_datetime(done, index, value, day)
                else:
                    sheet.write_number(done, index, value)
            if progress and done % 1000 == 0:
                progress(done)
        sheet.autofilter(0, 0, done, len(kind.columns) - 1)
    if progress:
        progress(done)
    return done


def file_name(kind: ExportKind, fmt: str, filters: Filters) -> str:
    """A download name such as ``invoice_2025-01-01_2025-03-31_paid.xlsx``."""
    parts = [kind.name]
    parts += [value for value in filters.as_dict().values() if value]
    return "_".join(parts) + f".{fmt}"
