"""Finance views: invoices (printable), payments, credit memos and the approvals queue,
disputes with their ageing, and the auditor's exports page.

Writes go through ``portal.services.invoices`` / ``payments`` / ``credits`` / ``disputes``;
action buttons come from ``portal.services.states``. The approvals queue's bulk
approve/reject re-checks each row in the service (permission, state, segregation of duties,
approval limit) and reports every refused row with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_login import current_user
from markupsafe import escape

import portal.security as security
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import (
    CREDIT_REASONS,
    DISPUTE_TYPES,
    PAYMENT_METHODS,
    ROOT_CAUSES,
    CreditMemo,
    CreditMemoStatus,
    Dispute,
    Invoice,
    InvoiceLine,
)
from portal.services import credits, disputes, exports, invoices, payments, refusals, states
from portal.services.base import PermissionDenied, ServiceError
from portal.views.base import ReadOnlyModelView, RecordHistoryMixin, ServiceModelView


def _flash_outcome(verb: str, outcome: credits.BulkOutcome) -> None:
    if outcome.done:
        flash(f"{verb}: {', '.join(outcome.done)}", "success")
    for number, reason in outcome.refused:
        flash(f"{number} not {verb.lower()}: {reason}", "danger")


def _act(model: type, pk: int, endpoint: str, call: Callable[[Any], str]):
    """Run one record action and flash its outcome (or the refusal), back on the record page."""
    record = db.session.get(model, pk)
    if record is None:
        abort(404)
    try:
        flash(call(record), "success")
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "danger")
    return redirect(url_for(endpoint, pk=pk))


class InvoiceLineView(ReadOnlyModelView):
    datamodel = SQLAInterface(InvoiceLine)
    class_permission_name = security.INVOICES
    list_title = "Invoice lines"
    list_columns = ["line_no", "description", "quantity", "unit_price", "amount", "tax_amount"]
    show_columns = list_columns


class PaymentView(ServiceModelView):
    service = payments.payments
    class_permission_name = security.PAYMENTS
    include_route_methods = {"list", "show", "add"}
    list_title = "Payments"
    list_columns = ["invoice", "amount", "received_on", "method", "reference", "recorded_by"]
    show_columns = [*list_columns, "created_at"]
    add_columns = ["invoice", "amount", "received_on", "method", "reference"]
    base_order = ("id", "desc")
    description_columns = {"method": ", ".join(PAYMENT_METHODS)}


class CreditMemoView(RecordHistoryMixin, ServiceModelView):
    service = credits.credit_memos
    audit_entity = "credit_memo"
    class_permission_name = security.CREDIT_MEMOS
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "approve": "approve",
        "reject": "approve",
    }
    include_route_methods = {"list", "show", "add", "history", "approve", "reject"}
    list_title = "Credit memos"
    show_template = "finance/credit_memo_show.html"
    list_columns = [
        "number",
        "invoice",
        "status",
        "reason_code",
        "amount",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    show_columns = [*list_columns, "reason_text", "decision_note", "dispute", "version"]
    add_columns = ["invoice", "reason_code", "reason_text", "amount"]
    search_columns = ["number", "status", "reason_code", "requested_by", "decided_by"]
    base_order = ("id", "desc")
    description_columns = {"reason_code": ", ".join(CREDIT_REASONS)}

    @expose("/approve/<int:pk>", methods=["POST"])
    @has_access
    def approve(self, pk: int):
        def approve(memo: CreditMemo) -> str:
            credits.approve(memo, current_actor("web"), request.form.get("note") or None)
            return f"{memo} approved"

        return _act(CreditMemo, pk, "CreditMemoView.show", approve)

    @expose("/reject/<int:pk>", methods=["POST"])
    @has_access
    def reject(self, pk: int):
        def reject(memo: CreditMemo) -> str:
            credits.reject(memo, current_actor("web"), request.form.get("note", ""))
            return f"{memo} rejected"

        return _act(CreditMemo, pk, "CreditMemoView.show", reject)


class InvoiceView(RecordHistoryMixin, ServiceModelView):
    service = invoices.invoices
    audit_entity = "invoice"
    class_permission_name = security.INVOICES
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "printable": "read",
        "issue": "write",
        "void": "write",
    }
    include_route_methods = {"list", "show", "edit", "history", "printable", "issue", "void"}
    list_title = "Invoices"
    show_template = "finance/invoice_show.html"
    list_columns = [
        "number",
        "customer",
        "order",
        "status",
        "issue_date",
        "due_date",
        "total",
        "balance",
        "is_overdue",
    ]
    show_columns = [
        "number",
        "status",
        "customer",
        "order",
        "shipment",
        "payment_term",
        "currency",
        "issue_date",
        "due_date",
        "tax_rate",
        "subtotal",
        "tax_amount",
        "total",
        "amount_paid",
        "amount_credited",
        "balance",
        "notes",
        "created_by",
        "issued_by",
        "issued_at",
        "voided_by",
        "void_reason",
        "version",
    ]
    edit_columns = ["tax_rate", "notes"]
    search_columns = ["number", "customer", "status", "issue_date", "due_date"]
    base_order = ("id", "desc")
    label_columns = {"is_overdue": "Overdue", "tax_rate": "Tax rate (fraction)"}
    related_views = [InvoiceLineView, PaymentView, CreditMemoView]

    @expose("/print/<int:pk>")
    @has_access
    def printable(self, pk: int):
        invoice = db.session.get(Invoice, pk)
        if invoice is None:
            abort(404)
        return self.render_template("finance/invoice_print.html", invoice=invoice)

    @expose("/issue/<int:pk>", methods=["POST"])
    @has_access
    def issue(self, pk: int):
        def issue(invoice: Invoice) -> str:
            invoices.issue(invoice, current_actor("web"))
            return f"invoice {invoice} issued"

        return _act(Invoice, pk, "InvoiceView.show", issue)

    @expose("/void/<int:pk>", methods=["POST"])
    @has_access
    def void(self, pk: int):
        def void(invoice: Invoice) -> str:
            invoices.void(invoice, current_actor("web"), request.form.get("reason", ""))
            return f"invoice {invoice} voided"

        return _act(Invoice, pk, "InvoiceView.show", void)


class CreditApprovalView(ReadOnlyModelView):
    """Supervisors' queue of requested credits, with bulk approve and reject."""

    datamodel = SQLAInterface(CreditMemo)
    class_permission_name = security.CREDIT_MEMOS
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "approve_selected": "approve",
        "reject_selected": "approve",
    }
    include_route_methods = {"list", "show", "action_post"}
    list_title = "Credit approvals"
    base_filters = [["status", FilterEqual, CreditMemoStatus.REQUESTED.value]]
    list_columns = [
        "number",
        "invoice",
        "reason_code",
        "amount",
        "requested_by",
        "requested_at",
        "reason_text",
    ]
    show_columns = [*list_columns, "status", "dispute"]
    base_order = ("id", "asc")

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        """FAB's bulk action, plus an audit event for each row refused for want of permission."""
        name = request.form.get("action", "")
        if name in self.actions and current_user.is_authenticated:
            permission = self.get_action_permission_name(name)
            if not self.appbuilder.sm.has_access(permission, self.class_permission_name):
                actor = current_actor("web")
                verb = "approve" if name == "approve" else "reject"
                for pk in request.form.getlist("rowid"):
                    if pk.isdigit() and db.session.get(CreditMemo, int(pk)) is not None:
                        refusals.record_refusal(
                            actor,
                            "credit_memo",
                            int(pk),
                            verb,
                            PermissionDenied(f"{actor.name} may not {verb} credit memos"),
                        )
        return super().action_post()

    def _decide(self, items: Any, approve: bool):
        rows = items if isinstance(items, list) else [items]
        outcome = credits.decide_many(
            [row.id for row in rows if row is not None],
            current_actor("web"),
            approve_them=approve,
            note=None if approve else "Rejected from the approvals queue",
        )
        _flash_outcome("Approved" if approve else "Rejected", outcome)
        return redirect(url_for(f"{type(self).__name__}.list"))

    @action("approve", "Approve", "Approve the selected credits?", "fa-check")
    def approve_selected(self, items: Any):
        return self._decide(items, True)

    @action("reject", "Reject", "Reject the selected credits?", "fa-times")
    def reject_selected(self, items: Any):
        return self._decide(items, False)


class DisputeView(RecordHistoryMixin, ServiceModelView):
    service = disputes.disputes
    audit_entity = "dispute"
    class_permission_name = security.DISPUTES
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "decide": "write",
        "investigate": "write",
        "investigate_selected": "write",
    }
    include_route_methods = {
        "list",
        "show",
        "add",
        "edit",
        "history",
        "decide",
        "investigate",
        "action_post",
    }
    list_title = "Disputes"
    show_template = "finance/dispute_show.html"
    list_columns = [
        "number",
        "invoice",
        "dispute_type",
        "amount",
        "owner",
        "status",
        "due_date",
        "age_days",
        "is_overdue",
    ]
    show_columns = [
        *list_columns,
        "description",
        "opened_by",
        "opened_at",
        "root_cause",
        "corrective_action",
        "resolution_note",
        "closed_by",
        "closed_at",
        "version",
    ]
    add_columns = ["invoice", "dispute_type", "amount", "owner", "description"]
    edit_columns = ["owner", "amount", "description", "due_date"]
    search_columns = ["number", "status", "dispute_type", "owner", "due_date"]
    base_order = ("id", "desc")
    label_columns = {"is_overdue": "Overdue", "age_days": "Age (days)", "dispute_type": "Type"}
    description_columns = {
        "dispute_type": ", ".join(DISPUTE_TYPES),
        "owner": "username of the person who owns it (default: you)",
    }

    @action("investigate", "Investigate", None, "fa-search")
    def investigate_selected(self, items: Any):
        actor = current_actor("web")
        for item in items if isinstance(items, list) else [items]:
            try:
                disputes.investigate(item, actor)
            except ServiceError as error:
                flash(f"{item}: {error.message}", "danger")
            else:
                flash(f"{item} is under investigation", "success")
        return redirect(url_for("DisputeView.list"))

    @expose("/investigate/<int:pk>", methods=["POST"])
    @has_access
    def investigate(self, pk: int):
        def investigate(dispute: Dispute) -> str:
            disputes.investigate(dispute, current_actor("web"))
            return f"{dispute} is under investigation"

        return _act(Dispute, pk, "DisputeView.show", investigate)

    @expose("/decide/<int:pk>", methods=["GET", "POST"])
    @has_access
    def decide(self, pk: int):
        """Resolve (root cause, corrective action, optional credit) or reject a dispute."""
        dispute = db.session.get(Dispute, pk)
        if dispute is None:
            abort(404)
        if request.method == "POST":
            form = request.form
            actor = current_actor("web")
            try:
                if form.get("decision") == "reject":
                    disputes.reject(
                        dispute,
                        actor,
                        reason=form.get("note", ""),
                        root_cause=form.get("root_cause") or None,
                    )
                else:
                    disputes.resolve(
                        dispute,
                        actor,
                        root_cause=form.get("root_cause", ""),
                        corrective_action=form.get("corrective_action", ""),
                        note=form.get("note"),
                        credit_amount=form.get("credit_amount") or None,
                    )
            except ServiceError as error:
                flash(str(escape(error.message)), "danger")
            else:
                flash(f"{dispute} is {dispute.status}", "success")
                return redirect(url_for("DisputeView.show", pk=pk))
        return self.render_template(
            "finance/dispute_decide.html",
            dispute=dispute,
            root_causes=ROOT_CAUSES,
            decisions=states.actions(dispute, current_actor("web")),
        )


class DisputeAgeingView(BaseView):
    """Open disputes by age, and the overdue ones."""

    route_base = "/disputes/ageing"
    class_permission_name = security.DISPUTES
    method_permission_name = {"index": "read"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("finance/dispute_ageing.html", ageing=disputes.ageing())


class ExportView(BaseView):
    """The auditor's exports page: pick a kind, period, status and format."""

    route_base = "/exports"
    class_permission_name = security.AUDIT
    method_permission_name = {"index": "export"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_template(
            "finance/exports.html", kinds=exports.KINDS, formats=exports.FORMATS
        )


def register_finance_views() -> None:
    """Add the finance views and menu entries."""
    ab = appbuilder
    ab.add_view(InvoiceView, "Invoices", icon="fa-file-o", category="Finance")
    ab.add_view(PaymentView, "Payments", icon="fa-money", category="Finance")
    ab.add_view(CreditMemoView, "Credit memos", icon="fa-undo", category="Finance")
    ab.add_view(CreditApprovalView, "Credit approvals", icon="fa-check", category="Finance")
    ab.add_view(DisputeView, "Disputes", icon="fa-exclamation-circle", category="Finance")
    ab.add_view(DisputeAgeingView, "Dispute ageing", icon="fa-clock-o", category="Finance")
    ab.add_view(ExportView, "Exports", icon="fa-download", category="Audit")
    ab.add_view_no_menu(InvoiceLineView)

    @current_app.context_processor
    def _finance_helpers() -> dict[str, Any]:
        return {
            "load_invoice": lambda pk: db.session.get(Invoice, pk),
            "load_credit_memo": lambda pk: db.session.get(CreditMemo, pk),
            "load_dispute": lambda pk: db.session.get(Dispute, pk),
        }
