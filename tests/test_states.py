"""The one state-machine helper: illegal moves are refused (409) with nothing written or
audited, and every record page shows exactly the actions ``states.actions`` allows the user."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.models import AuditEvent, CreditMemo, Dispute, Invoice, ReturnAuthorization
from portal.models import SalesOrder as Order
from portal.services import credits, disputes, invoices, orders, returns, states
from portal.services.base import ConflictError
from tests.conftest import REPO, actor, login
from tests.factories import SETUP, make_catalog, shipped_order

ROLES = ("specialist", "supervisor", "auditor", "admin")


def _draft_order(data) -> Order:
    return orders.orders.create_with_lines(
        {"customer_id": data.customer.id, "ship_to_id": data.customer.addresses[0].id},
        [{"product_id": data.products[0].id, "quantity": 2}],
        SETUP,
    )


def _records(data) -> dict[str, object]:
    """One record of each kind in an early state, all for one shipped order."""
    order, shipment = shipped_order(data, 10)
    invoice = invoices.invoice_shipment(shipment, SETUP, issue=False)
    issued = invoices.invoice_shipment(shipped_order(data, 4)[1], SETUP)
    memo = credits.request_credit(
        issued, actor("specialist"), reason_code="pricing_error", amount=Decimal("1.00")
    )
    dispute = disputes.open_dispute(
        issued, actor("specialist"), dispute_type="shortage", amount=Decimal("2.00")
    )
    rma = returns.request_return(
        order,
        actor("specialist"),
        lines={order.lines[0].id: 1},
        reason="wrong size",
        warehouse_id=data.warehouses[0].id,
    )
    return {
        "draft_order": _draft_order(data),
        "shipped_order": order,
        "invoice": invoice,
        "credit_memo": memo,
        "dispute": dispute,
        "return": rma,
    }


# -- illegal moves ----------------------------------------------------------------------------

ILLEGAL = {
    "draft_order": "shipped",
    "shipped_order": "cancelled",
    "invoice": "paid",
    "credit_memo": "requested",
    "dispute": "resolved",
    "return": "received",
}


@pytest.mark.parametrize("kind", sorted(ILLEGAL))
def test_an_illegal_move_is_refused_with_409_and_nothing_written_or_audited(
    clean_db, kind: str
) -> None:
    record = _records(make_catalog(stock=100))[kind]
    model, record_id, status = type(record), record.id, record.status
    events = db.session.query(AuditEvent).count()
    with pytest.raises(ConflictError) as caught:
        states.transition(record, ILLEGAL[kind], SETUP, "test")
    assert caught.value.status == 409
    assert f"cannot go from {status} to {ILLEGAL[kind]}" in caught.value.message
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(model, record_id).status == status
    assert db.session.query(AuditEvent).count() == events


def test_the_refusal_says_where_the_record_can_go(clean_db) -> None:
    order = _draft_order(make_catalog())
    with pytest.raises(
        ConflictError, match="from draft it can go to cancelled, confirmed, on_hold"
    ):
        states.transition(order, "shipped", SETUP)


def test_services_refuse_illegal_moves_through_the_table(clean_db) -> None:
    records = _records(make_catalog(stock=100))
    rma = records["return"]
    with pytest.raises(ConflictError, match="cannot go from requested to received"):
        returns.receive(rma, SETUP, {rma.lines[0].id: (1, "restock")})
    with pytest.raises(ConflictError, match="cannot go from requested to credited"):
        returns.credit(rma, SETUP)
    with pytest.raises(ConflictError, match="cannot go from open to resolved"):
        disputes.resolve(records["dispute"], SETUP, root_cause="other", corrective_action="x")
    memo = records["credit_memo"]
    credits.approve(memo, actor("supervisor"))
    with pytest.raises(ConflictError, match="already approved"):
        credits.reject(memo, actor("admin"), "too late")
    draft = records["invoice"]
    invoices.issue(draft, SETUP)
    with pytest.raises(ConflictError, match="cannot go from issued to issued"):
        invoices.issue(draft, SETUP)
    assert (rma.status, records["dispute"].status, memo.status) == ("requested", "open", "approved")


# -- pages show what the helper allows --------------------------------------------------------

PAGES = {
    "draft_order": "/salesorderview/show/{}",
    "shipped_order": "/salesorderview/show/{}",
    "invoice": "/invoiceview/show/{}",
    "credit_memo": "/creditmemoview/show/{}",
    "dispute": "/disputeview/show/{}",
    "return": "/returnview/show/{}",
}
# Dispute actions shown under another id: resolve and reject share the decide page's link.
BUTTON_OF = {"resolve": "dispute-decide", "reject": "dispute-decide"}


def _buttons(page: str) -> set[str]:
    return set(re.findall(r'id="(action-[a-z]+|dispute-decide)"', page))


def test_every_page_shows_exactly_the_actions_the_helper_allows_each_role(clean_db) -> None:
    records = _records(make_catalog(stock=100))
    for role in ROLES:
        client = login(clean_db, role)
        who = actor(role)
        for kind, url in PAGES.items():
            record = records[kind]
            page = client.get(url.format(record.id))
            assert page.status_code == 200, (role, kind)
            allowed = states.actions(record, who)
            shown_as = BUTTON_OF if kind == "dispute" else {}
            expected = {shown_as.get(name, f"action-{name}") for name in allowed}
            assert _buttons(page.text) == expected, (role, kind, allowed)


def test_what_each_role_sees(clean_db) -> None:
    records = _records(make_catalog(stock=100))
    memo, shipped = records["credit_memo"], records["shipped_order"]
    assert states.actions(memo, actor("specialist")) == []  # requested it; may not approve
    assert states.actions(memo, actor("supervisor")) == ["approve", "reject"]
    assert states.actions(memo, actor("auditor")) == []
    assert "cancel" not in states.actions(shipped, actor("admin"))  # shipped: no cancel
    assert states.actions(records["draft_order"], actor("specialist")) == ["confirm", "cancel"]
    assert states.actions(records["draft_order"], actor("auditor")) == []
    assert states.actions(records["invoice"], actor("specialist")) == ["issue", "void"]
    assert states.actions(records["dispute"], actor("specialist")) == ["investigate", "reject"]
    # Only a Supervisor authorizes a return, and never one they requested.
    assert states.actions(records["return"], actor("specialist")) == ["reject"]
    assert states.actions(records["return"], actor("supervisor")) == ["authorize", "reject"]
    own = credits.request_credit(
        memo.invoice, actor("supervisor"), reason_code="goodwill", amount=Decimal("1.00")
    )
    assert states.actions(own, actor("supervisor")) == []  # never approve your own request
    assert states.actions(own, actor("supervisor2")) == ["approve", "reject"]
    assert "void" not in states.actions(memo.invoice, actor("admin"))  # credits pending
    page = login(clean_db, "supervisor").get(f"/creditmemoview/show/{own.id}").text
    assert 'id="action-approve"' not in page
    page = login(clean_db, "specialist").get(f"/creditmemoview/show/{memo.id}").text
    assert 'id="action-approve"' not in page
    page = login(clean_db, "supervisor").get(f"/salesorderview/show/{shipped.id}").text
    assert 'id="action-cancel"' not in page and 'id="action-invoice"' in page


def test_page_actions_post_through_the_services(clean_db) -> None:
    records = _records(make_catalog(stock=100))
    rma, dispute, invoice = records["return"], records["dispute"], records["invoice"]
    memo = records["credit_memo"]
    clerk, boss = login(clean_db, "specialist"), login(clean_db, "supervisor")
    assert boss.post(f"/returnview/authorize/{rma.id}").status_code == 302
    line = rma.lines[0]
    clerk.post(
        f"/returnview/receive/{rma.id}",
        data={f"qty_{line.id}": "1", f"condition_{line.id}": "scrap"},
    )
    assert clerk.post(f"/disputeview/investigate/{dispute.id}").status_code == 302
    assert clerk.post(f"/invoiceview/issue/{invoice.id}").status_code == 302
    clerk.post(f"/creditmemoview/approve/{memo.id}")  # no can_approve: refused by FAB
    db.session.expire_all()
    assert db.session.get(CreditMemo, memo.id).status == "requested"
    assert boss.post(f"/creditmemoview/approve/{memo.id}").status_code == 302
    db.session.expire_all()
    statuses = (
        db.session.get(ReturnAuthorization, rma.id).status,
        db.session.get(Dispute, dispute.id).status,
        db.session.get(Invoice, invoice.id).status,
        db.session.get(CreditMemo, memo.id).status,
    )
    assert statuses == ("received", "investigating", "issued", "approved")


# -- the issued-invoice guard is registered by the app -----------------------------------------


def test_the_issued_invoice_guard_is_registered_by_create_app_not_by_import(test_env) -> None:
    script = (
        "from sqlalchemy import event\n"
        "from portal.extensions import db\n"
        "from portal.services import invoices\n"
        "guard = invoices._issued_invoices_are_immutable\n"
        "assert not event.contains(db.session, 'before_flush', guard), 'import registered it'\n"
        "from portal import create_app\n"
        "create_app()\n"
        "assert event.contains(db.session, 'before_flush', guard), 'create_app did not'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_app_refuses_changing_an_issued_invoice_at_flush(clean_db) -> None:
    invoice = invoices.invoice_shipment(shipped_order(make_catalog(), 2)[1], SETUP)
    invoice.notes = "changed behind the services' back"
    with pytest.raises(ConflictError, match="is issued and cannot change"):
        db.session.flush()
    db.session.rollback()
