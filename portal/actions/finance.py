"""The finance actions: invoices (``generate``, ``issue``, ``void``), credit memos
(``approve``, ``reject``) and disputes (``investigate``, ``resolve``, ``reject``), each one
service call; the ``*_FORM`` variants read the HTML forms' field names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from portal.actions import Action, load
from portal.actions.forms import (
    DisputeRejectForm,
    OpenDisputeForm,
    RejectCreditForm,
    RequestCreditForm,
)
from portal.actions.schemas import (
    DisputeRejectSchema,
    GenerateSchema,
    InvestigateSchema,
    NoteSchema,
    ReasonSchema,
    ResolveSchema,
)
from portal.models import CreditMemo, Dispute, Invoice, SalesOrder
from portal.services import credits, disputes, invoices
from portal.services.base import Actor


def _generate(_: None, actor: Actor, body: dict[str, Any]) -> list[Invoice]:
    return invoices.invoice_pending(load(SalesOrder, body["order_id"]), actor)


GENERATE = Action("generate", Invoice, _generate, GenerateSchema, status=201)
ISSUE = Action("issue", Invoice, lambda invoice, actor, _: invoices.issue(invoice, actor))
VOID = Action("void", Invoice, lambda i, a, body: invoices.void(i, a, body["reason"]), ReasonSchema)
APPROVE = Action(
    "approve", CreditMemo, lambda m, a, body: credits.approve(m, a, body.get("note")), NoteSchema
)
REJECT_CREDIT = Action(
    "reject", CreditMemo, lambda m, a, body: credits.reject(m, a, body["reason"]), ReasonSchema
)
INVESTIGATE = Action(
    "investigate",
    Dispute,
    lambda d, a, body: disputes.investigate(d, a, body.get("owner")),
    InvestigateSchema,
)
RESOLVE = Action(
    "resolve", Dispute, lambda d, a, body: disputes.resolve(d, a, **body), ResolveSchema
)
REJECT_DISPUTE = Action(
    "reject", Dispute, lambda d, a, body: disputes.reject(d, a, **body), DisputeRejectSchema
)

# The HTML forms': their reason field is called ``note``.
REJECT_CREDIT_FORM = replace(REJECT_CREDIT, schema=RejectCreditForm)
REJECT_DISPUTE_FORM = replace(REJECT_DISPUTE, schema=DisputeRejectForm)

# An invoice's forms: open a dispute on it, request a credit against it.
OPEN_DISPUTE_FORM = Action(
    "open_dispute",
    Invoice,
    lambda invoice, actor, body: disputes.open_dispute(invoice, actor, **body),
    OpenDisputeForm,
)
REQUEST_CREDIT_FORM = Action(
    "request_credit",
    Invoice,
    lambda invoice, actor, body: credits.request_credit(invoice, actor, **body),
    RequestCreditForm,
)
