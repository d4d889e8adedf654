"""Finance views: invoices (printable), payments, credit memos and the approvals queue,
disputes with their ageing, and the auditor's exports page.

Record actions run the actions of ``portal.actions.finance`` through the pipeline the REST
API uses; action buttons come from ``portal.services.states``. The approvals queue's bulk
approve/reject runs each row through the pipeline on its own (the service re-checks
permission, state, segregation of duties, approval limit) and reports every refused row with
its reason.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_login import current_user

import portal.security as security
from portal.actions import perform, record_route_denial
from portal.actions.finance import (
    APPROVE,
    INVESTIGATE,
    ISSUE,
    OPEN_DISPUTE_FORM,
    REJECT_CREDIT_FORM,
    REJECT_DISPUTE_FORM,
    REQUEST_CREDIT_FORM,
    RESOLVE,
    VOID,
)
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import (
    CREDIT_REASONS,
    DISPUTE_TYPES,
    PAYMENT_METHODS,
    ROOT_CAUSES,
    CreditMemo,
    CreditMemoStatus,
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceLine,
    Product,
    ReturnAuthorization,
)
from portal.services import credits, disputes, exports, invoices, payments, states
from portal.services.money import OPEN_STATUSES
from portal.views.base import (
    ReadOnlyModelView,
    RecordHistoryMixin,
    ServiceModelView,
    form_body,
    form_page,
    has_access_audited,
    keeps_input,
    record_action,
    run_form_action,
)
from portal.views.formatting import choice, code_filter, formatters, label
from portal.views.pickers import (
    Picked,
    PickerFilters,
    RecordPicker,
    invoice_of_customer,
    product_on_lines,
)

INVOICE = "InvoiceView.show"
INVOICE_LOOKUP = "/api/v1/lookup/invoice"
INVOICE_PICKED = Picked("Invoice", Invoice, "invoice")
MEMO_PICKERS = {
    "customer": Picked("Customer", Customer, "customer", where=invoice_of_customer(CreditMemo)),
    "invoice": INVOICE_PICKED,
}
DISPUTE = "DisputeView.show"


def _rows(items: Any) -> list[Any]:
    """The records a FAB bulk action was given (one record, or a list)."""
    return [row for row in (items if isinstance(items, list) else [items]) if row is not None]


def _invoice_form(
    view: Any, pk: int, action: Any, success: Any, made: str, template: str, **choices: Any
):
    """A form page on invoice ``pk`` that makes a dispute or credit memo (``form_page``)."""
    invoice = db.session.get(Invoice, pk)
    if invoice is None:
        abort(404)

    def render() -> str:
        shown = db.session.get(Invoice, pk)
        return view.render_template(
            template,
            invoice=shown,
            available=credits.available_to_credit(shown),
            typed=request.form,
            **choices,
        )

    return form_page(action, pk, success, made, url_for(INVOICE, pk=pk), render)


class InvoiceLineView(PickerFilters, ReadOnlyModelView):
    datamodel = SQLAInterface(InvoiceLine)
    class_permission_name = security.INVOICES
    list_title = "Invoice lines"
    list_columns = ["line_no", "description", "quantity", "unit_price", "amount", "tax_amount"]
    show_columns = list_columns
    search_columns = ["invoice", "product", "description"]
    quick_search_column = None
    pickers = {
        "invoice": INVOICE_PICKED,
        "product": Picked("Product", Product, "product"),
    }


class PaymentView(PickerFilters, ServiceModelView):
    service = payments.payments
    class_permission_name = security.PAYMENTS
    include_route_methods = {"list", "show", "add"}
    list_title = "Payments"
    list_columns = ["invoice", "amount", "received_on", "method", "reference", "recorded_by"]
    show_columns = [*list_columns, "created_at"]
    add_columns = ["invoice", "amount", "received_on", "method", "reference"]
    search_columns = ["invoice", "amount", "received_on", "method", "reference", "recorded_by"]
    quick_search_column = None
    pickers = {"invoice": INVOICE_PICKED}
    base_order = ("id", "desc")
    description_columns = {"method": ", ".join(PAYMENT_METHODS)}


class CreditMemoView(PickerFilters, RecordHistoryMixin, ServiceModelView):
    service = credits.credit_memos
    audit_entity = "credit_memo"
    class_permission_name = security.CREDIT_MEMOS
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "approve": "approve",
        "reject": "approve",
        "request_credit": "write",
    }
    include_route_methods = {
        "list",
        "show",
        "add",
        "history",
        "approve",
        "reject",
        "request_credit",
    }
    list_title = "Credit memos"
    show_title = "Credit memo"
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
    show_columns = [*list_columns, "reason_text", "decision_note", "dispute"]
    add_columns = ["invoice", "reason_code", "reason_text", "amount"]
    search_columns = [
        "number",
        "status",
        "reason_code",
        "requested_by",
        "requested_at",
        "decided_by",
    ]
    search_form_extra_fields = {
        "status": code_filter(CreditMemoStatus),
        "reason_code": code_filter(CREDIT_REASONS, "Reason"),
    }
    pickers = MEMO_PICKERS
    base_order = ("id", "desc")
    label_columns = {"reason_code": "Reason", "reason_text": "Details"}
    add_template = "picker_add.html"
    add_form_extra_fields = {
        "invoice": RecordPicker("Invoice", Invoice, INVOICE_LOOKUP),
        "reason_code": choice("Reason", CREDIT_REASONS),
    }
    formatters_columns = formatters(
        money_columns=("amount",),
        moment_columns=("requested_at", "decided_at"),
        label_columns=("status", "reason_code"),
        columns=show_columns,
    )

    @expose("/request_credit/<int:pk>", methods=["GET", "POST"])
    @has_access_audited
    def request_credit(self, pk: int):
        """Request a credit against invoice ``pk``: the reason from the list, the amount (at
        most the balance less the credits already waiting); made: on the new memo."""
        return _invoice_form(
            self,
            pk,
            REQUEST_CREDIT_FORM,
            lambda memo: f"{memo} requested; it waits for a Supervisor",
            "CreditMemoView.show",
            "finance/credit_request.html",
            reasons=CREDIT_REASONS,
        )

    @expose("/approve/<int:pk>", methods=["POST"])
    @has_access_audited
    def approve(self, pk: int):
        return record_action(APPROVE, pk, lambda memo: f"{memo} approved", "CreditMemoView.show")

    @expose("/reject/<int:pk>", methods=["POST"])
    @has_access_audited
    def reject(self, pk: int):
        return record_action(
            REJECT_CREDIT_FORM, pk, lambda memo: f"{memo} rejected", "CreditMemoView.show"
        )


class InvoiceView(PickerFilters, RecordHistoryMixin, ServiceModelView):
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
    pickers = {
        "customer": Picked("Customer", Customer, "customer"),
        "product": product_on_lines(Invoice.id, InvoiceLine.invoice_id, InvoiceLine.order_line_id),
    }
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
    @has_access_audited
    def issue(self, pk: int):
        return record_action(ISSUE, pk, lambda invoice: f"invoice {invoice} issued", INVOICE)

    @expose("/void/<int:pk>", methods=["POST"])
    @has_access_audited
    def void(self, pk: int):
        return record_action(VOID, pk, lambda invoice: f"invoice {invoice} voided", INVOICE)


class CreditApprovalView(PickerFilters, ReadOnlyModelView):
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
    list_template = "finance/credit_approvals.html"  # the reason a Reject needs
    base_filters = [["status", FilterEqual, CreditMemoStatus.REQUESTED.value]]
    list_columns = [
        "number",
        "invoice.customer",
        "invoice",
        "invoice.balance",
        "reason_code",
        "amount",
        "requested_by",
        "age_days",
        "reason_text",
    ]
    show_columns = [*list_columns, "status", "dispute"]
    search_columns = ["number", "invoice", "reason_code", "requested_by", "requested_at"]
    pickers = MEMO_PICKERS
    base_order = ("id", "asc")
    label_columns = {
        "invoice.customer": "Customer",
        "invoice.balance": "Invoice balance",
        "reason_code": "Reason",
        "reason_text": "Details",
        "age_days": "Age (days)",
    }
    formatters_columns = formatters(
        money_columns=("amount", "invoice.balance"),
        label_columns=("status", "reason_code"),
        columns=show_columns,
    )

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
                    record_route_denial(actor, CreditMemo, pk, verb)
        return super().action_post()

    def _decide(self, items: Any, approve: bool):
        """Each row through the pipeline on its own: done, or refused with the reason. A
        reject needs the reason typed above the list: without one nothing is rejected and
        the queue is shown again (422) with the rows still ticked."""
        action, verb = (APPROVE, "Approved") if approve else (REJECT_CREDIT_FORM, "Rejected")
        note = request.form.get("note", "").strip()
        body = {} if approve or not note else {"note": note}
        done: list[str] = []
        for memo_id, number in [(row.id, row.number) for row in _rows(items)]:
            outcome = perform(action, memo_id, lambda: body, "web")
            if outcome.ok:
                done.append(number)
            elif keeps_input(outcome):  # the same input for every row: none would pass
                flash(f"Nothing {verb.lower()}: {outcome.message}", "danger")
                return self.list(), outcome.status
            else:
                flash(f"{number} not {verb.lower()}: {outcome.message}", "danger")
        if done:
            flash(f"{verb}: {', '.join(done)}", "success")
        return redirect(url_for(f"{type(self).__name__}.list"))

    @action("approve", "Approve", "Approve the selected credits?", "fa-check")
    def approve_selected(self, items: Any):
        return self._decide(items, True)

    @action("reject", "Reject", "Reject the selected credits?", "fa-times")
    def reject_selected(self, items: Any):
        return self._decide(items, False)


class DisputeView(PickerFilters, RecordHistoryMixin, ServiceModelView):
    service = disputes.disputes
    audit_entity = "dispute"
    class_permission_name = security.DISPUTES
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "decide": "write",
        "investigate": "write",
        "investigate_selected": "write",
        "open_dispute": "write",
    }
    include_route_methods = {
        "open_dispute",
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
    show_title = "Dispute"
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
    ]
    add_columns = ["invoice", "dispute_type", "amount", "owner", "description"]
    edit_columns = ["owner", "amount", "description", "due_date"]
    search_columns = ["number", "status", "dispute_type", "owner", "opened_at", "due_date"]
    search_form_extra_fields = {
        "status": code_filter(DisputeStatus),
        "dispute_type": code_filter(DISPUTE_TYPES, "Type"),
    }
    pickers = {
        "customer": Picked("Customer", Customer, "customer", where=invoice_of_customer(Dispute)),
        "invoice": INVOICE_PICKED,
    }
    base_order = ("id", "desc")
    label_columns = {
        "is_overdue": "Overdue",
        "age_days": "Age (days)",
        "dispute_type": "Type",
        "root_cause": "Root cause",
    }
    description_columns = {"owner": "username of the person who owns it (default: you)"}
    add_template = "picker_add.html"
    add_form_extra_fields = {
        "invoice": RecordPicker("Invoice", Invoice, INVOICE_LOOKUP),
        "dispute_type": choice("Type", {code: label(code) for code in DISPUTE_TYPES}),
    }
    formatters_columns = formatters(
        money_columns=("amount",),
        day_columns=("due_date",),
        moment_columns=("opened_at", "closed_at"),
        label_columns=("status", "dispute_type", "root_cause"),
        flag_columns=("is_overdue",),
        columns=show_columns,
    )

    @action("investigate", "Investigate", None, "fa-search")
    def investigate_selected(self, items: Any):
        for dispute_id, number in [(row.id, row.number) for row in _rows(items)]:
            outcome = perform(INVESTIGATE, dispute_id, dict, "web")
            if outcome.ok:
                flash(f"{number} is under investigation", "success")
            else:
                flash(f"{number}: {outcome.message}", "danger")
        return redirect(url_for("DisputeView.list"))

    @expose("/open_dispute/<int:pk>", methods=["GET", "POST"])
    @has_access_audited
    def open_dispute(self, pk: int):
        """Open a dispute on invoice ``pk``: the type from the list, amount, details; made:
        on the new dispute."""
        return _invoice_form(
            self,
            pk,
            OPEN_DISPUTE_FORM,
            lambda dispute: f"dispute {dispute} opened, due {dispute.due_date}",
            DISPUTE,
            "finance/dispute_open.html",
            types={code: label(code) for code in DISPUTE_TYPES},
        )

    @expose("/investigate/<int:pk>", methods=["POST"])
    @has_access_audited
    def investigate(self, pk: int):
        return record_action(
            INVESTIGATE, pk, lambda dispute: f"{dispute} is under investigation", DISPUTE
        )

    @expose("/decide/<int:pk>", methods=["GET", "POST"])
    @has_access_audited
    def decide(self, pk: int):
        """Resolve (root cause, corrective action, optional credit) or reject a dispute; a
        refused input is shown again as typed, any other outcome goes back to the dispute."""
        status = 200
        if request.method == "POST":
            body = form_body()
            reject = body.pop("decision", "resolve") == "reject"
            outcome = run_form_action(
                REJECT_DISPUTE_FORM if reject else RESOLVE,
                pk,
                lambda dispute: f"{dispute} is {dispute.status}",
                read=lambda: body,
            )
            if not keeps_input(outcome):
                return redirect(url_for(DISPUTE, pk=pk))
            status = outcome.status
        dispute = db.session.get(Dispute, pk)
        if dispute is None:
            abort(404)
        return self.render_template(
            "finance/dispute_decide.html",
            dispute=dispute,
            root_causes=ROOT_CAUSES,
            decisions=states.actions(dispute, current_actor("web")),
            typed=request.form,
        ), status


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


def invoice_offers(invoice: Invoice) -> set[str]:
    """What the signed-in user may start from an open invoice: a dispute, a credit."""
    if invoice.status not in OPEN_STATUSES:
        return set()
    actor = current_actor("web")
    wanted = {"open_dispute": security.DISPUTES, "request_credit": security.CREDIT_MEMOS}
    return {name for name, view in wanted.items() if actor.can("can_write", view)}


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
            "invoice_offers": invoice_offers,
            "invoice_related": lambda invoice: {
                "disputes": db.session.query(Dispute).filter_by(invoice_id=invoice.id).all()
            },
            "memo_returns": lambda memo: (
                db.session.query(ReturnAuthorization).filter_by(credit_memo_id=memo.id).all()
            ),
        }
