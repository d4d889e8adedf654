"""Twelve weeks of demo order history, played through the services in date order.

How the history is made (the rule for every record the demo seeds):

- Every record is created and moved by the service a person would use, as that person
  (``specialist``, ``supervisor``), so every rule, check, state change, notification and audit
  event is the services' own. Nothing is written behind their back, no status is set by hand.
- The day each step happened is passed to the service explicitly as its business date:
  ``order_date``; ``today`` of confirm and allocate (the checklist, promised date and backorder
  dates are computed as of that day); ``ship_date``/``eta`` and ``delivered_date`` of
  shipments; an invoice's issue date (``on``, its due date follows from the terms);
  ``received_on`` of payments; ``opened_at``/``at`` of disputes; ``at`` of credit requests and
  decisions and of RMAs. Those services refuse a date in the future or before the record it
  follows, so the history cannot contradict itself.
- What the system stamps itself (``created_at``, ``issued_at``, audit events, the outbox's
  messages) keeps the time of seeding: it is when this database learned of the fact.
- Steps run from a calendar in date order (one order's shipment may come after another
  order's confirmation), so stock is taken first come, first served, and a step whose day
  would be after today is simply not taken: recent orders are still open, in transit or unpaid.

Everything is drawn from one ``random.Random(seed)``, so the same seed gives the same history
(relative to the day it is seeded).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from portal.demo_fates import CARRIERS, Fate, draw_fate, next_workday
from portal.extensions import db
from portal.models import (
    DELAY_REASONS,
    Allocation,
    Backorder,
    BackorderStatus,
    CreditMemo,
    Customer,
    Dispute,
    Invoice,
    InvoiceLine,
    OrderLine,
    OrderStatus,
    Product,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
    Warehouse,
    utcnow,
)
from portal.services import (
    changes,
    credits,
    disputes,
    fulfillment,
    inventory,
    invoices,
    lifecycle,
    orders,
    payments,
    returns,
    states,
)
from portal.services.base import Actor, unit_of_work
from portal.services.money import OPEN_STATUSES

FILL_ACTOR = Actor.system("job:fill_backorders")
CENT = Decimal("0.01")


def sqlite_settles(invoice: Invoice, paid: Decimal, credited: Decimal) -> bool:
    """Whether the database accepts ``paid`` + ``credited`` on ``invoice``.

    SQLite stores NUMERIC as REAL and checks ``ck_invoice_balance_not_negative`` in floating
    point, so settling an invoice to exactly zero can be refused there (158.27 + 8.33 >
    166.60); the demo leaves such a step out rather than record a refusal. PostgreSQL compares
    exactly.
    """
    if db.session.get_bind().dialect.name != "sqlite":
        return True
    return float(paid) + float(credited) <= float(invoice.total)


class History:
    """The calendar of steps and the people who take them."""

    def __init__(
        self,
        rng: random.Random,
        people: dict[str, Actor],
        customers: list[Customer],
        products: list[Product],
        today: date,
    ) -> None:
        self.rng = rng
        self.specialist = people["specialist"]
        self.supervisor = people["supervisor"]
        self.customers = customers
        self.products = products
        self.today = today
        self.calendar: list[tuple[date, int, Callable[[date], None]]] = []
        self.seq = itertools.count()
        self.waiting: dict[int, tuple[SalesOrder, Fate]] = {}  # orders short of stock
        self.scarce: set[int] = set()  # products the supplier never delivers

    # -- the calendar ---------------------------------------------------------------------------

    def on(self, day: date, step: Callable[[date], None] | tuple[str, Any]) -> None:
        """Take ``step`` (a function of the day, or ``(kind, item)``: see :meth:`take`) on
        ``day``, unless that is after today."""
        if day <= self.today:
            heapq.heappush(self.calendar, (day, next(self.seq), step))

    def moment(self, day: date) -> datetime:
        """A time during the working hours of ``day`` (never after now)."""
        hour, minute = self.rng.randint(8, 17), self.rng.randint(0, 59)
        return min(datetime.combine(day, time(hour, minute), UTC), utcnow())

    def play(self, days: list[date]) -> None:
        """Enter an order on each of ``days`` and run the calendar up to today.

        Each day is one unit of work: the services called for it join it and commit once.
        """
        for index, day in enumerate(days):
            self.on(day, ("enter", index))
        monday = days[0] + timedelta(days=7 - days[0].weekday()) if days else self.today
        while monday <= self.today:
            self.on(monday, self.restock)
            monday += timedelta(days=7)
        while self.calendar:
            day = self.calendar[0][0]
            with unit_of_work():
                while self.calendar and self.calendar[0][0] == day:
                    self.take(day)

    def take(self, day: date) -> None:
        """Take the steps due on ``day`` so far: the items of each batch kind (enter, confirm,
        allocate, deliver) with one call of it, then the other steps in the order planned."""
        batches = {self.enter: [], self.confirm: [], self.allocate: [], self.deliver: []}
        steps: list[Callable[[date], None]] = []
        while self.calendar and self.calendar[0][0] == day:
            step = heapq.heappop(self.calendar)[2]
            if isinstance(step, tuple):
                batches[getattr(self, step[0])].append(step[1])
            else:
                steps.append(step)
        for batch_step, items in batches.items():
            if items:
                batch_step(day, items)
        for step in steps:
            step(day)

    # -- orders ---------------------------------------------------------------------------------

    def enter(self, day: date, indexes: list[int]) -> None:
        """The orders that came in on ``day``, entered as one batch (``create_many``)."""
        rng = self.rng
        fates, entries = [], []
        for index in indexes:
            fates.append(draw_fate(rng))
            customer = rng.choice(self.customers)
            chosen = rng.sample(self.products, rng.randint(1, 5))
            lead = max(product.lead_time_days for product in chosen)
            header = {
                "customer_id": customer.id,
                "customer_po": f"PO-{rng.randint(10000, 99999)}-{index}",
                "order_date": day,
                "requested_date": day
                + timedelta(days=lead + rng.randint(2, 12) + (fates[-1].converted_after or 0)),
                "ship_to_id": customer.addresses[0].id,
                "incoterm": rng.choice(["EXW", "FCA", "DAP", "DDP"]),
                "status": "quote" if fates[-1].quote else "draft",
            }
            lines = [
                {"product_id": product.id, "quantity": product.pack_size * rng.randint(1, 30)}
                for product in chosen
            ]
            entries.append((header, lines))
        created = orders.orders.create_many(entries, self.specialist)
        for order, fate in zip(created, fates, strict=True):
            if fate.converted_after is not None:
                self.on(
                    day + timedelta(days=fate.converted_after),
                    lambda d, o=order, f=fate: self.accept_quote(d, o, f),
                )
            elif not (fate.quote or fate.abandoned):
                when = day if rng.random() < 0.6 else next_workday(day)
                self.on(when, ("confirm", (order, fate)))

    def accept_quote(self, day: date, order: SalesOrder, fate: Fate) -> None:
        """The customer accepts the quote: it becomes a draft order, confirmed that day."""
        lifecycle.convert_quote(order, self.specialist)
        self.on(day, ("confirm", (order, fate)))

    def confirm(self, day: date, batch: list[tuple[SalesOrder, Fate]]) -> None:
        """Confirm the orders due on ``day`` as one batch (``confirm_many``)."""
        lifecycle.confirm_many([order for order, _ in batch], self.specialist, today=day)
        for order, fate in batch:
            if order.status == OrderStatus.ON_HOLD.value:
                if self.rng.random() < 0.3:  # the customer gave up waiting for credit
                    self.on(
                        day + timedelta(days=self.rng.randint(5, 15)),
                        lambda d, o=order: self.cancel(o, "credit"),
                    )
            elif fate.cancel:
                self.on(
                    next_workday(day, self.rng.randint(1, 4)),
                    lambda d, o=order: self.cancel(o, "customer_request"),
                )
            else:
                self.on(next_workday(day, self.rng.randint(1, 3)), ("allocate", (order, fate)))

    def cancel(self, order: SalesOrder, reason: str) -> None:
        text = "credit refused" if reason == "credit" else "customer changed supplier"
        changes.cancel_order(order, self.specialist, reason, text)

    def allocate(self, day: date, batch: list[tuple[SalesOrder, Fate]]) -> None:
        """Allocate the orders due on ``day`` as one batch (``allocate_many``), first come,
        first served."""
        fulfillment.allocate_many([order for order, _ in batch], self.specialist, today=day)
        for order, fate in batch:
            if not self.ready(order, fate):
                self.waiting[order.id] = (order, fate)
            elif not fate.stall:
                self.on(
                    next_workday(day, self.rng.randint(0, 3)),
                    lambda d, o=order, f=fate: self.ship(d, o, f),
                )

    @staticmethod
    def ready(order: SalesOrder, fate: Fate) -> bool:
        """Whether ``order`` can ship now: something allocated (everything, for a customer
        who takes complete deliveries only)."""
        if fate.complete:
            return order.status == OrderStatus.ALLOCATED.value
        return order.status in fulfillment.SHIPPABLE

    def restock(self, day: date) -> None:
        """Monday's deliveries from suppliers: most products on backorder come in."""
        short = db.session.execute(
            select(OrderLine.product_id)
            .join(Backorder, Backorder.order_line_id == OrderLine.id)
            .where(Backorder.status == BackorderStatus.OPEN.value)
            .distinct()
            .order_by(OrderLine.product_id)
        ).scalars()
        warehouse = db.session.execute(select(Warehouse).order_by(Warehouse.priority)).scalar()
        for product_id in list(short):
            if self.rng.random() < 0.35 or product_id in self.scarce:  # the supplier is late
                continue
            product = db.session.get(Product, product_id)
            quantity = product.pack_size * self.rng.randint(100, 400)
            inventory.receive(
                product_id, warehouse.id, quantity, self.supervisor, reference=f"PO {day}"
            )
            fulfillment.fill_backorders(product_id, FILL_ACTOR)
        for order_id, (order, fate) in list(self.waiting.items()):
            if self.ready(order, fate):
                del self.waiting[order_id]
                self.on(next_workday(day), lambda d, o=order, f=fate: self.ship(d, o, f))

    # -- shipping -------------------------------------------------------------------------------

    def ship(self, day: date, order: SalesOrder, fate: Fate) -> None:
        if order.status not in fulfillment.SHIPPABLE:
            return
        rows = db.session.execute(
            select(Allocation)
            .join(OrderLine)
            .where(OrderLine.order_id == order.id, Allocation.quantity > 0)
            .order_by(Allocation.warehouse_id, OrderLine.line_no)
        ).scalars()
        by_warehouse: dict[int, dict[int, int]] = {}
        held = False
        for row in rows:
            quantity = row.quantity
            if fate.split and not fate.held_back and quantity > 1:
                fate.held_back.add(row.order_line_id)
                quantity, held = quantity // 2, True
            by_warehouse.setdefault(row.warehouse_id, {})[row.order_line_id] = quantity
        for warehouse_id, lines in by_warehouse.items():
            shipment = self._ship_from(day, order, fate, warehouse_id, lines)
            arrival = shipment.eta + timedelta(days=self.rng.randint(0, 2) if fate.late else 0)
            self.on(arrival, ("deliver", (shipment, fate)))
        if held:
            self.on(next_workday(day, self.rng.randint(3, 8)), lambda d: self.ship(d, order, fate))
        elif any(fulfillment.unallocated(line) for line in order.lines):
            self.waiting[order.id] = (order, fate)

    def _ship_from(
        self, day: date, order: SalesOrder, fate: Fate, warehouse_id: int, lines: dict[int, int]
    ) -> Shipment:
        rng = self.rng
        eta = day + timedelta(days=rng.randint(2, 7))
        promised = order.promised_date or eta
        if fate.late:
            eta = max(eta, promised + timedelta(days=rng.randint(1, 6)))
        elif eta > promised:
            eta = max(day, promised)
        return fulfillment.ship(
            order,
            self.specialist,
            warehouse_id=warehouse_id,
            lines=lines,
            carrier=rng.choice(CARRIERS),
            tracking_number=f"1Z{rng.randint(10**9, 10**10)}",
            ship_date=day,
            eta=eta,
            delay_reason=rng.choice(list(DELAY_REASONS)) if eta > promised else None,
        )

    def deliver(self, day: date, batch: list[tuple[Shipment, Fate]]) -> None:
        """The shipments arriving on ``day``: each delivered, then those to invoice invoiced
        as one batch (``invoice_shipments``; one invoice per order in ``order`` mode)."""
        to_invoice = []
        for shipment, fate in batch:
            fulfillment.deliver(shipment, self.specialist, day)
            if fate.returned:
                fate.returned = False  # one return per order
                self.on(
                    day + timedelta(days=self.rng.randint(3, 10)),
                    lambda d, s=shipment: self.request_return(d, s),
                )
            if fate.uninvoiced:
                continue
            if invoices.invoice_mode() == "shipment":
                to_invoice.append((shipment, fate))
            elif shipment.order.status == OrderStatus.DELIVERED.value:
                self.collect(invoices.invoice_order(shipment.order, self.specialist, on=day), fate)
        if to_invoice:
            shipments = [shipment for shipment, _ in to_invoice]
            made = invoices.invoice_shipments(shipments, self.specialist, on=day)
            for invoice, (_, fate) in zip(made, to_invoice, strict=True):
                self.collect(invoice, fate)

    # -- money ----------------------------------------------------------------------------------

    def collect(self, invoice: Invoice, fate: Fate) -> None:
        """Plan how the customer pays ``invoice``: on time, late, partly, never, or not
        before a credit or a dispute."""
        rng, issued, due = self.rng, invoice.issue_date, invoice.due_date
        if fate.payer == "on_time":
            self.on(
                issued + timedelta(days=rng.randint(5, max(5, (due - issued).days))),
                lambda d: self.pay(d, invoice),
            )
        elif fate.payer == "late":
            self.on(due + timedelta(days=rng.randint(3, 30)), lambda d: self.pay(d, invoice))
        elif fate.payer == "partial":
            self.on(
                due - timedelta(days=rng.randint(0, 5)),
                lambda d: self.pay(d, invoice, Decimal("0.5")),
            )
        elif fate.payer == "credit":
            self.on(
                issued + timedelta(days=rng.randint(1, 6)),
                lambda d: self.request_credit(d, invoice),
            )
        elif fate.payer == "dispute":
            self.on(issued + timedelta(days=rng.randint(1, 10)), lambda d: self.dispute(d, invoice))

    def pay(self, day: date, invoice: Invoice, share: Decimal = Decimal(1)) -> None:
        amount = (invoice.balance * share).quantize(CENT)
        if amount <= 0 or invoice.status not in OPEN_STATUSES:
            return
        if not sqlite_settles(invoice, invoice.amount_paid + amount, invoice.amount_credited):
            return
        payments.record_payment(
            invoice, self.specialist, amount=amount, received_on=day, reference=f"remittance {day}"
        )
        self.close_if_settled(invoice.order)

    def close_if_settled(self, order: SalesOrder) -> None:
        """An invoiced order whose invoices are all paid is closed."""
        if order.status != OrderStatus.INVOICED.value:
            return
        statuses = db.session.execute(
            select(Invoice.status).where(Invoice.order_id == order.id, Invoice.status != "void")
        ).scalars()
        if all(status == "paid" for status in statuses):
            states.transition(order, OrderStatus.CLOSED.value, self.specialist, "paid in full")

    def request_credit(self, day: date, invoice: Invoice) -> None:
        reason = self.rng.choice(["damaged", "shortage", "pricing_error", "late_delivery"])
        memo = credits.request_credit(
            invoice,
            self.specialist,
            reason_code=reason,
            amount=(
                credits.available_to_credit(invoice)
                * Decimal(self.rng.choice(["0.05", "0.1", "0.2"]))
            ).quantize(CENT),
            reason_text={"damaged": "two cartons crushed", "shortage": "one pack missing"}.get(
                reason, "customer claim"
            ),
            at=self.moment(day),
        )
        roll = self.rng.random()
        decided = next_workday(day, self.rng.randint(1, 3))
        if roll < 0.7:
            self.on(decided, lambda d: self.decide(d, memo, invoice, True))
        elif roll < 0.85:
            self.on(decided, lambda d: self.decide(d, memo, invoice, False))

    def can_approve(self, memo: CreditMemo) -> bool:
        """Whether the supervisor's approval of ``memo`` would go through (above their limit
        it waits for an Admin; on an invoice paid meanwhile it stays requested)."""
        limit = credits.approval_limit(self.supervisor)
        invoice = memo.invoice
        return (
            (limit is None or memo.amount <= limit)
            and invoice.status in OPEN_STATUSES
            and memo.amount <= invoice.balance
            and sqlite_settles(invoice, invoice.amount_paid, invoice.amount_credited + memo.amount)
        )

    def decide(self, day: date, memo: CreditMemo, invoice: Invoice, approve: bool) -> None:
        if approve and not self.can_approve(memo):
            return
        if approve:
            credits.approve(memo, self.supervisor, "claim checked", at=self.moment(day))
        else:
            credits.reject(memo, self.supervisor, "no evidence of the claim", at=self.moment(day))
        if self.rng.random() < 0.7:  # then the customer pays the rest
            self.on(next_workday(day, self.rng.randint(2, 20)), lambda d: self.pay(d, invoice))

    def dispute(self, day: date, invoice: Invoice) -> None:
        rng = self.rng
        opened = disputes.open_dispute(  # taken by the Supervisor, worked by the Specialist
            invoice,
            self.supervisor,
            dispute_type=rng.choice(["pricing", "shortage", "damaged", "late_delivery", "other"]),
            amount=(invoice.total * Decimal(rng.choice(["0.1", "0.2", "0.3"]))).quantize(CENT),
            description="customer disputes part of the invoice",
            opened_at=self.moment(day),
        )
        if rng.random() < 0.85:
            self.on(next_workday(day, rng.randint(1, 3)), lambda d: self.investigate(d, opened))

    def investigate(self, day: date, dispute: Dispute) -> None:
        disputes.investigate(dispute, self.specialist)
        roll = self.rng.random()
        closed = next_workday(day, self.rng.randint(2, 15))
        if roll < 0.55:
            self.on(closed, lambda d: self.resolve(d, dispute))
        elif roll < 0.8:
            self.on(closed, lambda d: self.reject_dispute(d, dispute))

    def resolve(self, day: date, dispute: Dispute) -> None:
        credit = (dispute.amount / 2).quantize(CENT) if self.rng.random() < 0.5 else None
        if credit is not None and credit > credits.available_to_credit(dispute.invoice):
            credit = None
        disputes.resolve(
            dispute,
            self.specialist,
            root_cause=self.rng.choice(
                ["price_list_error", "picking_error", "carrier", "packing_damage"]
            ),
            corrective_action="checked with the warehouse and the customer",
            note="agreed with the customer",
            credit_amount=credit,
            at=self.moment(day),
        )
        memo = db.session.execute(
            select(CreditMemo).where(CreditMemo.dispute_id == dispute.id)
        ).scalar()
        if memo is not None:
            invoice = dispute.invoice
            self.on(next_workday(day), lambda d: self.decide(d, memo, invoice, True))

    def reject_dispute(self, day: date, dispute: Dispute) -> None:
        disputes.reject(
            dispute,
            self.specialist,
            reason="the delivery note is signed without remarks",
            root_cause="no_fault_found",
            at=self.moment(day),
        )

    # -- returns --------------------------------------------------------------------------------

    def request_return(self, day: date, shipment: Shipment) -> None:
        item = shipment.lines[0]
        line = item.order_line
        packs = max(1, item.quantity // line.product.pack_size)  # a part of the line, or all
        quantity = min(item.quantity, line.product.pack_size * self.rng.randint(1, packs))
        rma = returns.request_return(
            shipment.order,
            self.specialist,
            lines={line.id: quantity},
            reason=self.rng.choice(
                ["wrong size delivered", "damaged in transit", "ordered too many"]
            ),
            warehouse_id=shipment.warehouse_id,
            at=self.moment(day),
        )
        roll = self.rng.random()
        if roll < 0.15:
            self.on(next_workday(day), lambda d: returns.reject(rma, self.specialist))
        elif roll < 0.9:
            self.on(next_workday(day), lambda d: self.authorize(d, rma))

    def authorize(self, day: date, rma: ReturnAuthorization) -> None:
        returns.authorize(rma, self.supervisor)  # a Supervisor, never the requester
        if self.rng.random() < 0.8:
            self.on(day + timedelta(days=self.rng.randint(3, 8)), lambda d: self.receive(d, rma))

    def receive(self, day: date, rma: ReturnAuthorization) -> None:
        condition = "scrap" if "damaged" in rma.reason else "restock"
        received = {line.id: (line.quantity, condition) for line in rma.lines}
        returns.receive(rma, self.specialist, received)
        if self.rng.random() < 0.8:
            self.on(next_workday(day), lambda d: self.credit_return(d, rma))

    def credit_return(self, day: date, rma: ReturnAuthorization) -> None:
        """Credit the returned units if their invoice is still open, else just close."""
        line = rma.lines[0]
        invoice = db.session.execute(
            select(Invoice)
            .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
            .where(
                InvoiceLine.order_line_id == line.order_line_id,
                Invoice.status.in_(OPEN_STATUSES),
            )
            .order_by(Invoice.id)
        ).scalar()
        value = line.order_line.unit_price * line.received_quantity * 2  # with any tax
        if invoice is None or credits.available_to_credit(invoice) < value:
            returns.close(rma, self.specialist)
            return
        returns.credit(rma, self.specialist, at=self.moment(day))
        memo_id = rma.credit_memo_id
        self.on(next_workday(day), lambda d: self.approve_return_credit(d, rma, memo_id))

    def approve_return_credit(self, day: date, rma: ReturnAuthorization, memo_id: int) -> None:
        memo = db.session.get(CreditMemo, memo_id)
        if memo is None or not self.can_approve(memo):
            return
        credits.approve(memo, self.supervisor, "goods received back", at=self.moment(day))
        returns.close(rma, self.specialist)
