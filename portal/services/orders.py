"""Sales orders and their lines: entry and editing while an order is still open for it.

The lifecycle (validation checklist, confirmation, allocation, shipment) builds on these
functions; an order's status is only ever changed by services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import (
    INCOTERMS,
    Customer,
    CustomerAddress,
    OrderLine,
    OrderStatus,
    Product,
    SalesOrder,
    utcnow,
)
from portal.services import audit, limits, numbering, pricing
from portal.services.base import (
    Actor,
    ConflictError,
    RecordService,
    ValidationFailed,
    assign_ids,
    preload,
    save_versioned,
    unit_of_work,
)
from portal.services.bounds import entered_value_problem

EDITABLE_STATUSES = {OrderStatus.QUOTE.value, OrderStatus.DRAFT.value, OrderStatus.ON_HOLD.value}
ORDER_VIEW = "SalesOrder"


class OrderService(RecordService[SalesOrder]):
    """Order headers; create() also takes the lines."""

    model = SalesOrder
    entity = "sales_order"
    permission_view = ORDER_VIEW
    creatable = (
        "customer_id",
        "customer_po",
        "order_date",
        "requested_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "currency",
        "notes",
        "status",
        "external_ref",
        "source",
    )
    editable = (
        "customer_po",
        "requested_date",
        "promised_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "notes",
    )

    def create(self, data: Mapping[str, Any], actor: Actor) -> SalesOrder:
        """Create an order without lines (see :meth:`create_many`)."""
        return self.create_many([(data, [])], actor)[0]

    def create_with_lines(
        self, data: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], actor: Actor
    ) -> SalesOrder:
        """Create an order (status ``draft`` or ``quote``) with its lines in one transaction."""
        return self.create_many([(data, lines)], actor)[0]

    def create_many(
        self,
        entries: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
        actor: Actor,
    ) -> list[SalesOrder]:
        """Create orders, each ``(header, lines)``, in one transaction (all or none).

        Numbers and products are read once for the whole batch and every order and line is
        written by one flush, so an import of many orders costs a few statements, not a few
        per order. Errors of the order at position *i* of a batch are reported under
        ``orders[i].<field>``.
        """
        self._require(actor, "can_write")
        if not entries:
            return []
        for index, (_, lines) in enumerate(entries):  # before any per-line work
            field = "lines" if len(entries) == 1 else f"orders[{index}].lines"
            limits.check_line_count(len(lines), field)
        with unit_of_work() as sess:
            numbers = numbering.next_numbers("sales_order", len(entries))
            products = _products([line for _, lines in entries for line in lines])
            preload(sess, Customer, (data.get("customer_id") for data, _ in entries))
            preload(sess, CustomerAddress, (data.get("ship_to_id") for data, _ in entries))
            created = []
            # No autoflush while building: a query on the way (a customer's prices) would
            # insert the orders built so far, and ``assign_ids`` needs them still pending.
            with sess.no_autoflush:
                for index, ((data, lines), number) in enumerate(zip(entries, numbers, strict=True)):
                    try:
                        data = dict(data)
                        status = data.get("status") or OrderStatus.DRAFT.value
                        if status not in (OrderStatus.DRAFT.value, OrderStatus.QUOTE.value):
                            refusal = {"status": ["a new order starts as draft or quote"]}
                            raise ValidationFailed(refusal)
                        data["status"] = status
                        order = self.build(data, actor, number=number)
                        if lines:
                            add_lines(order, lines, actor, products=products)
                    except ValidationFailed as error:
                        if len(entries) == 1:
                            raise
                        raise ValidationFailed(
                            {f"orders[{index}].{k}": v for k, v in error.field_errors.items()}
                        ) from error
                    created.append(order)
            assign_ids(sess, created)
            assign_ids(sess, [line for order in created for line in order.lines])
            sess.flush()
        return created

    def defaults(self) -> dict[str, Any]:
        return {
            "order_date": utcnow().date(),
            "status": OrderStatus.DRAFT.value,
            "lines": [],  # known empty: adding lines needs no query for the existing ones
        }

    def validate(self, sess: Session, record: SalesOrder, changed: set[str]):
        errors: dict[str, list[str]] = {}
        if record.id is None:
            customer = sess.get(Customer, record.customer_id) if record.customer_id else None
            if customer is not None:
                record.customer = customer  # a new order's lines are priced before its flush
                if record.payment_term_id is None:
                    record.payment_term_id = customer.payment_term_id
                if "currency" not in changed:
                    record.currency = customer.currency
        elif record.status not in EDITABLE_STATUSES:
            raise ConflictError(
                f"order {record.number} is {record.status}; use an amendment to change it"
            )
        if record.incoterm is not None and record.incoterm not in INCOTERMS:
            errors["incoterm"] = [f"must be one of {', '.join(INCOTERMS)}"]
        if record.ship_to_id is not None and record.customer_id is not None:
            address = sess.get(CustomerAddress, record.ship_to_id)
            if address is not None and address.customer_id != record.customer_id:
                errors["ship_to_id"] = ["is not an address of this customer"]
        if (
            record.requested_date is not None
            and record.order_date is not None
            and record.requested_date < record.order_date
        ):
            errors["requested_date"] = ["is before the order date"]
        return errors


orders = OrderService()


def line_quantity_errors(
    order: SalesOrder,
    quantities: Mapping[int, int],
    limit: Callable[[OrderLine], int],
    over_limit: str,
) -> list[str]:
    """Problems with ``{order_line_id: quantity}`` for ``order``: lines not on it, quantities
    that are not whole numbers above 0, or above ``limit(line)`` (``over_limit`` is the
    message, with ``{limit}`` for the limit)."""
    problems: list[str] = []
    by_id = {line.id: line for line in order.lines}
    for line_id, quantity in quantities.items():
        line = by_id.get(line_id)
        if line is None:
            problems.append(f"line {line_id} is not on {order.number}")
        elif not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            problems.append(f"line {line.line_no}: quantity must be > 0")
        elif quantity > (most := limit(line)):
            problems.append(f"line {line.line_no}: " + over_limit.format(limit=most))
    return problems


def _line_errors(data: Mapping[str, Any], product: Product | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    known = {"product_id", "quantity", "unit_price", "discount_pct", "external_ref"}
    for name in sorted(set(data) - known):
        errors[name] = ["unknown or read-only field"]
    if product is None:
        errors["product_id"] = ["is required" if not data.get("product_id") else "does not exist"]
    quantity = data.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        errors["quantity"] = ["must be a whole number above 0"]
    unit_price = data.get("unit_price")
    if unit_price is not None and (not isinstance(unit_price, Decimal) or unit_price < 0):
        errors["unit_price"] = ["must be a decimal amount of 0 or more"]
    discount = data.get("discount_pct") or Decimal("0")
    if not isinstance(discount, Decimal) or not Decimal("0") <= discount <= Decimal("100"):
        errors["discount_pct"] = ["must be a percentage between 0 and 100"]
    for name in ("unit_price", "discount_pct"):
        problem = entered_value_problem(OrderLine.__table__.c[name], data.get(name))
        if problem is not None and name not in errors:
            errors[name] = [problem]
    return errors


def _products(lines: Sequence[Mapping[str, Any]]) -> dict[int, Product]:
    """The products ``lines`` name by a valid id, with one query."""
    wanted = {
        data["product_id"]
        for data in lines
        if isinstance(data.get("product_id"), int) and not isinstance(data["product_id"], bool)
    }
    if not wanted:
        return {}
    query = select(Product).where(Product.id.in_(wanted))
    return {product.id: product for product in db.session.execute(query).scalars()}


def add_lines(
    order: SalesOrder,
    lines: Sequence[Mapping[str, Any]],
    actor: Actor,
    products: Mapping[int, Product] | None = None,
) -> list[OrderLine]:
    """Add lines; a missing unit price is the customer's price for that quantity.

    Every line is checked before any is added; the errors of line *n* are reported under
    ``lines[n].<field>``. ``products`` may hold the lines' products, already loaded. The lines
    are written by the next flush.
    """
    orders._require(actor, "can_write")
    if order.status not in EDITABLE_STATUSES:
        raise ConflictError(f"order {order.number} is {order.status}; lines can't be added")
    limits.check_line_count(len(order.lines) + len(lines))
    if products is None:
        products = _products(lines)
    errors: dict[str, list[str]] = {}
    for index, data in enumerate(lines):
        product_id = data.get("product_id")
        product = products.get(product_id) if isinstance(product_id, int) else None
        for name, messages in _line_errors(data, product).items():
            errors[name if len(lines) == 1 else f"lines[{index}].{name}"] = messages
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work() as sess:
        items = [(products[data["product_id"]], data["quantity"]) for data in lines]
        list_prices = pricing.prices_for(order.customer, items)
        line_no = max((line.line_no for line in order.lines), default=0)
        created = []
        for data, (product, quantity), price in zip(lines, items, list_prices, strict=True):
            line_no += 1
            unit_price = data.get("unit_price")
            created.append(
                OrderLine(
                    order=order,
                    line_no=line_no,
                    product_id=product.id,
                    product=product,
                    quantity=quantity,
                    unit_price=price if unit_price is None else unit_price,
                    list_price=product.list_price,
                    discount_pct=data.get("discount_pct") or Decimal("0"),
                    external_ref=data.get("external_ref"),
                )
            )
        sess.add_all(created)
        for line in created:
            audit.record(
                actor,
                "order_line",
                line,
                "create",
                after={
                    "order": order.number,
                    "line_no": line.line_no,
                    "product": line.product.sku,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                },
            )
    return created


def add_line(order: SalesOrder, data: Mapping[str, Any], actor: Actor) -> OrderLine:
    """Add one line (see :func:`add_lines`)."""
    return add_lines(order, [data], actor)[0]


class OrderLineService(RecordService[OrderLine]):
    """Edits of a line while its order is still open for entry."""

    model = OrderLine
    entity = "order_line"
    permission_view = ORDER_VIEW
    editable = ("quantity", "unit_price", "discount_pct")

    def validate(self, sess: Session, record: OrderLine, changed: set[str]):
        if record.order.status not in EDITABLE_STATUSES:
            raise ConflictError(
                f"order {record.order.number} is {record.order.status}; "
                "use an amendment to change its lines"
            )
        if "unit_price" in changed and record.price_override_by:
            # an approved price stands for that price only: a new one is checked again
            record.price_override_by = None
            record.price_override_reason = None
        errors: dict[str, list[str]] = {}
        if record.quantity is not None and record.quantity <= 0:
            errors["quantity"] = ["must be a whole number above 0"]
        if record.unit_price is not None and record.unit_price < 0:
            errors["unit_price"] = ["must not be negative"]
        if record.discount_pct is not None and not 0 <= record.discount_pct <= 100:
            errors["discount_pct"] = ["must be a percentage between 0 and 100"]
        return errors


order_lines = OrderLineService()


def save_statuses(changed_orders: Sequence[SalesOrder]) -> None:
    """Write the status changes of many orders with one statement (see ``save_versioned``)."""
    save_versioned(db.session, changed_orders, ("status", "hold_reasons", "promised_date"))
