"""Maintenance jobs: verifying the audit chain, forgetting expired idempotency keys."""

from __future__ import annotations

from rq import get_current_job

from jobs.context import app_job
from portal.services import audit, idempotency, jobs


@app_job
def verify_audit_chain() -> dict:
    """Re-compute the audit hash chain and record the result as a job run."""
    current = get_current_job()
    run = jobs.start_run(current.id if current else "inline", "verify_audit_chain")
    result = audit.verify()
    outcome = {"ok": result.ok, "checked": result.checked, "problem": result.problem}
    jobs.finish_run(run, outcome, None if result.ok else result.problem)
    return outcome


@app_job
def purge_idempotency_keys() -> int:
    """Delete expired Idempotency-Keys (stale claims, answers past their retention)."""
    return idempotency.purge_expired()
