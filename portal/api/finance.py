"""Finance REST resources: ``invoice``, ``payment``, ``credit_memo``, ``dispute`` and exports.

Actions (all through ``portal.services.invoices`` / ``credits`` / ``disputes``):

* ``POST /api/v1/invoice/generate`` ``{"order_id": n}`` — invoice what the order still needs,
  following ``INVOICE_MODE`` (each uninvoiced shipment, or the whole order); ``POST
  /invoice/<id>/issue`` (a draft) and ``/invoice/<id>/void`` ``{"reason"}``;
* ``POST /api/v1/credit_memo/<id>/approve`` ``{"note"?}`` and ``/reject`` ``{"reason"}``;
* ``POST /api/v1/dispute/<id>/investigate`` ``{"owner"?}``, ``/resolve`` ``{"root_cause",
  "corrective_action", "note"?, "credit_amount"?}`` and ``/reject`` ``{"reason",
  "root_cause"?}``;
* ``GET /api/v1/<invoice|credit_memo|dispute|audit_event>/export?format=csv|xlsx&from=&to=
  &status=&async=`` — streams the file, or (more than ``EXPORT_SYNC_MAX_ROWS`` rows, default
  50,000, or ``async=1``) answers 202 with a job whose ``/export/<job_id>`` reports progress
  and whose ``/export/<job_id>/file`` downloads the result.

Permissions: ``can_write`` for actions, ``can_approve`` on ``CreditMemo`` to decide credits,
``can_export`` to export. Every action runs through the action pipeline
(:mod:`portal.actions`); a refused one is audited, also when FAB itself refuses it for want of
the permission.
"""

from __future__ import annotations

import tempfile

from flask import Response, current_app, request, send_file, stream_with_context
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.security.decorators import permission_name

import portal.security as security
from portal.actions.finance import (
    APPROVE,
    GENERATE,
    INVESTIGATE,
    ISSUE,
    REJECT_CREDIT,
    REJECT_DISPUTE,
    RESOLVE,
    VOID,
)
from portal.actors import current_actor
from portal.api.base import READ_ONLY_ROUTES, ServiceResourceApi
from portal.extensions import appbuilder
from portal.services import credits, disputes, exports, invoices, payments
from portal.services.base import ServiceError

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_ROUTES = {"export", "export_status", "export_file"}
FINANCE_METHOD_PERMISSIONS = {
    **security.METHOD_PERMISSIONS,
    "export": "export",
    "export_status": "export",
    "export_file": "export",
    "generate": "write",
    "issue": "write",
    "void": "write",
    "approve": "approve",
    "reject": "approve",
    "investigate": "write",
    "resolve": "write",
    "reject_dispute": "write",
}


class ExportRoutes:
    """``/export``, ``/export/<job_id>`` and ``/export/<job_id>/file`` of one record kind."""

    export_kind: str

    def _export_error(self, error: ServiceError):
        return self.response(error.status, **error.to_dict())  # type: ignore[attr-defined]

    @expose("/export", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    def export(self):
        """Export records as CSV or XLSX, filtered by date range and status.
        ---
        get:
          description: Stream an export, or queue it (202) when large or async=1
          responses:
            200:
              description: The file
            202:
              description: Queued; poll status_url
        """
        from jobs import reports

        args = request.args
        try:
            actor = current_actor("api")
            kind, fmt, filters = exports.parse_request(
                self.export_kind,
                args.get("format"),
                args.get("from"),
                args.get("to"),
                args.get("status"),
            )
            exports.authorise(kind, actor)
            total = exports.count(kind, filters)
            limit = int(current_app.config.get("EXPORT_SYNC_MAX_ROWS", 50_000))
            if args.get("async") in ("1", "true") or total > limit:
                job = reports.enqueue_export(kind, fmt, filters, actor, total)
                status_url = f"{request.path}/{job.id}"
                return self.response(  # type: ignore[attr-defined]
                    202,
                    job_id=job.id,
                    rows=total,
                    status_url=status_url,
                    download_url=f"{status_url}/file",
                )
            exports.record_export(actor, kind, fmt, filters, total, mode="stream")
        except ServiceError as error:
            return self._export_error(error)
        name = exports.file_name(kind, fmt, filters)
        if fmt == "csv":
            chunks = exports.csv_chunks(kind, exports.rows(kind, filters))
            return Response(
                stream_with_context(chunks),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        # The workbook is spooled to an anonymous temporary file (constant memory), which
        # send_file streams and closes.
        spool = tempfile.TemporaryFile(dir=current_app.config["INSTANCE_DIR"])  # noqa: SIM115
        exports.write_xlsx(kind, exports.rows(kind, filters), spool)
        spool.seek(0)
        return send_file(spool, mimetype=XLSX_TYPE, as_attachment=True, download_name=name)

    @expose("/export/<string:job_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    def export_status(self, job_id: str):
        """Progress of a queued export.
        ---
        get:
          description: Status, progress and download link of an export job
          responses:
            200:
              description: The job's status
        """
        from jobs import reports

        try:
            job = reports.job_for(job_id, current_actor("api"))
        except ServiceError as error:
            return self._export_error(error)
        body = reports.status(job)
        if body["status"] == "finished":
            body["download_url"] = f"{request.path}/file"
        return self.response(200, **body)  # type: ignore[attr-defined]

    @expose("/export/<string:job_id>/file", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    def export_file(self, job_id: str):
        """Download a finished export.
        ---
        get:
          description: The file written by an export job
          responses:
            200:
              description: The file
        """
        from jobs import reports

        try:
            path, name = reports.result_file(reports.job_for(job_id, current_actor("api")))
        except ServiceError as error:
            return self._export_error(error)
        mimetype = XLSX_TYPE if name.endswith(".xlsx") else "text/csv"
        return send_file(path, mimetype=mimetype, as_attachment=True, download_name=name)


class FinanceApi(ExportRoutes, ServiceResourceApi):
    """Shared settings of the finance resources."""

    method_permission_name = FINANCE_METHOD_PERMISSIONS
    optional_on_add: tuple[str, ...] = ()  # the service fills these in when left out

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        for name in self.optional_on_add:
            self.add_model_schema.load_fields[name].required = False


class InvoiceApi(FinanceApi):
    resource_name = "invoice"
    service = invoices.invoices
    export_kind = "invoice"
    class_permission_name = security.INVOICES
    include_route_methods = READ_ONLY_ROUTES | EXPORT_ROUTES | {"put", "generate", "issue", "void"}
    list_columns = [
        "id",
        "number",
        "status",
        "order_id",
        "shipment_id",
        "customer_id",
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
        "version",
    ]
    show_columns = [
        *list_columns,
        "payment_term_id",
        "notes",
        "created_by",
        "created_at",
        "issued_by",
        "issued_at",
        "voided_by",
        "voided_at",
        "void_reason",
    ]
    edit_columns = ["tax_rate", "notes", "version"]
    order_columns = ["id", "number", "status", "issue_date", "due_date", "total"]

    @expose("/generate", methods=["POST"])
    @protect()
    @safe
    @permission_name("write")
    def generate(self):
        """Invoice what an order still needs invoiced (per INVOICE_MODE).
        ---
        post:
          description: Create and issue the order's pending invoices
          responses:
            201:
              description: The invoices created
        """
        return self.run_action(GENERATE)

    @expose("/<int:pk>/issue", methods=["POST"])
    @protect()
    @safe
    @permission_name("write")
    def issue(self, pk: int):
        """Issue a draft invoice.
        ---
        post:
          description: Number, issue date and due date; immutable from then on
          responses:
            200:
              description: The issued invoice
        """
        return self.run_action(ISSUE, pk)

    @expose("/<int:pk>/void", methods=["POST"])
    @protect()
    @safe
    @permission_name("write")
    def void(self, pk: int):
        """Void an invoice without payments or credits.
        ---
        post:
          description: Void with a reason (the number is kept)
          responses:
            200:
              description: The voided invoice
        """
        return self.run_action(VOID, pk)


class PaymentApi(FinanceApi):
    resource_name = "payment"
    service = payments.payments
    class_permission_name = security.PAYMENTS
    include_route_methods = READ_ONLY_ROUTES | {"post"}
    list_columns = [
        "id",
        "invoice_id",
        "amount",
        "received_on",
        "method",
        "reference",
        "recorded_by",
        "created_at",
    ]
    show_columns = list_columns
    add_columns = ["invoice_id", "amount", "received_on", "method", "reference"]
    order_columns = ["id", "invoice_id", "amount", "received_on"]


class CreditMemoApi(FinanceApi):
    resource_name = "credit_memo"
    service = credits.credit_memos
    export_kind = "credit_memo"
    class_permission_name = security.CREDIT_MEMOS
    include_route_methods = READ_ONLY_ROUTES | EXPORT_ROUTES | {"post", "approve", "reject"}
    list_columns = [
        "id",
        "number",
        "invoice_id",
        "dispute_id",
        "status",
        "reason_code",
        "reason_text",
        "amount",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "version",
    ]
    show_columns = list_columns
    add_columns = ["invoice_id", "reason_code", "reason_text", "amount"]
    order_columns = ["id", "number", "status", "amount", "requested_at"]

    @expose("/<int:pk>/approve", methods=["POST"])
    @protect()
    @safe
    @permission_name("approve")
    def approve(self, pk: int):
        """Approve a requested credit memo (not your own; within your limit).
        ---
        post:
          description: Approve and apply the credit to the invoice balance
          responses:
            200:
              description: The approved credit memo
        """
        return self.run_action(APPROVE, pk)

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    @permission_name("approve")
    def reject(self, pk: int):
        """Reject a requested credit memo with a reason.
        ---
        post:
          description: Reject the credit (not your own)
          responses:
            200:
              description: The rejected credit memo
        """
        return self.run_action(REJECT_CREDIT, pk)


class DisputeApi(FinanceApi):
    resource_name = "dispute"
    service = disputes.disputes
    export_kind = "dispute"
    class_permission_name = security.DISPUTES
    include_route_methods = (
        READ_ONLY_ROUTES
        | EXPORT_ROUTES
        | {"post", "put", "investigate", "resolve", "reject_dispute"}
    )
    list_columns = [
        "id",
        "number",
        "invoice_id",
        "dispute_type",
        "amount",
        "owner",
        "status",
        "opened_by",
        "opened_at",
        "due_date",
        "is_overdue",
        "age_days",
        "root_cause",
        "version",
    ]
    show_columns = [
        *list_columns,
        "description",
        "corrective_action",
        "resolution_note",
        "closed_by",
        "closed_at",
    ]
    add_columns = ["invoice_id", "dispute_type", "amount", "description", "owner"]
    optional_on_add = ("owner",)
    edit_columns = ["owner", "amount", "description", "due_date", "version"]
    order_columns = ["id", "number", "status", "due_date", "opened_at", "amount"]

    @expose("/<int:pk>/investigate", methods=["POST"])
    @protect()
    @safe
    @permission_name("write")
    def investigate(self, pk: int):
        """Start investigating an open dispute.
        ---
        post:
          description: open → investigating (optionally with a new owner)
          responses:
            200:
              description: The dispute
        """
        return self.run_action(INVESTIGATE, pk)

    @expose("/<int:pk>/resolve", methods=["POST"])
    @protect()
    @safe
    @permission_name("write")
    def resolve(self, pk: int):
        """Resolve a dispute (root cause and corrective action required).
        ---
        post:
          description: investigating → resolved; credit_amount requests a credit memo
          responses:
            200:
              description: The dispute
        """
        return self.run_action(RESOLVE, pk)

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    @permission_name("write")
    def reject_dispute(self, pk: int):
        """Reject a dispute with a reason.
        ---
        post:
          description: open or investigating → rejected
          responses:
            200:
              description: The dispute
        """
        return self.run_action(REJECT_DISPUTE, pk)


class AuditEventExportApi(ExportRoutes, BaseApi):
    """``/api/v1/audit_event/export``: the audit trail for auditors (beside the core API)."""

    resource_name = "audit_event"
    export_kind = "audit_event"
    class_permission_name = security.AUDIT
    method_permission_name = FINANCE_METHOD_PERMISSIONS
    include_route_methods = EXPORT_ROUTES
    allow_browser_login = True


def register_finance_apis() -> None:
    """Add the finance resources and the audit-event export."""
    for api in (InvoiceApi, PaymentApi, CreditMemoApi, DisputeApi, AuditEventExportApi):
        appbuilder.add_api(api)
