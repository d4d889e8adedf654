"""Rows of a team's sheet that name no record yet: created in batches, or refused per row.

A tracker keyed on the team's own references (:mod:`portal.sync.team_keys`) meets rows whose
key no record carries. When the tracker may create, :func:`adopt_rows` turns them into orders
(with their lines, for one-row-per-line sheets) through ``orders.create_many`` — a few
statements per batch, not a transaction per row — keeping the row's dates, finding customers
and products by code or name. A row that cannot become a record is refused with the reason;
without "may create" the rows stay unmatched (the engine lists them). With ``dry`` nothing
is written: the result says what a sync would do.

:class:`Adoption` then adjusts the merge's plan (a refused row's status says why) and the
run's row outcomes (a created row is ``created``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Customer, OrderLine, Product, SalesOrder
from portal.services import orders
from portal.services.base import ServiceError, ValidationFailed, unit_of_work
from portal.services.bounds import entered_value_problem
from portal.sync.base import Row, sheet_actor
from portal.sync.kinds import kind_for
from portal.sync.team_keys import TEAM_KINDS, order_by_ref
from sheets.engine import ERROR, NOT_SYNCED, NOTE, RowIssue, SyncPlan, normalize_key
from sheets.outcomes import CREATED, REFUSED, RowOutcome
from sheets.trackers import Column, TrackerSpec, header_id
from sheets.values import ValueParseError, normalize

BATCH = 250  # orders per create_many call


@dataclass
class Adoption:
    """What became of the rows whose key named no record (rows numbered from the header)."""

    created: dict[int, str] = field(default_factory=dict)  # row -> message
    refused: dict[int, str] = field(default_factory=dict)  # row -> reason

    def mark(self, plan: SyncPlan) -> None:
        """Refused rows: their "not synced" becomes an error naming the reason; created ones
        get a note naming the new record."""
        kept = [i for i in plan.issues if not (i.kind == NOT_SYNCED and i.row in self.refused)]
        kept += [RowIssue(r, None, ERROR, f"not created: {m}") for r, m in self.refused.items()]
        kept += [RowIssue(r, None, NOTE, m) for r, m in self.created.items()]
        plan.issues[:] = sorted(kept, key=lambda i: i.row)

    def outcomes(self, outcomes: Sequence[RowOutcome]) -> list[RowOutcome]:
        """The run's outcomes with created and refused rows said as such."""
        out = []
        said = set()
        for o in outcomes:
            if o.header is None:
                said.add(o.row)
            if o.row in self.refused and o.header is None:
                o = replace(o, outcome=REFUSED, message=f"not created: {self.refused[o.row]}")
            elif o.row in self.created and o.header is None and o.outcome != REFUSED:
                o = replace(o, outcome=CREATED, message=self.created[o.row])
            out.append(o)
        keys = {o.row: o.key for o in outcomes}
        for r in sorted(set(self.created) - said):  # a new row whose only other news is a conflict
            out.append(RowOutcome(r, keys.get(r), CREATED, self.created[r]))
        return sorted(out, key=lambda o: (o.row, o.header is None))  # as sheets.outcomes


def sheet_keys(spec: TrackerSpec, rows: Sequence[Sequence[Any]]) -> dict[str, list[int]]:
    """key -> the rows (1-based, header row 1) that carry it."""
    if not rows:
        return {}
    wanted = header_id(spec.key_header)
    idx = next((i for i, h in enumerate(rows[0]) if header_id(h) == wanted), None)
    out: dict[str, list[int]] = {}
    if idx is None:
        return out
    for r, row in enumerate(rows[1:], start=2):
        key = normalize_key(row[idx]) if idx < len(row) else None
        if key is not None:
            out.setdefault(key, []).append(r)
    return out


def portal_side(
    spec: TrackerSpec, filter: str | None, rows: Sequence[Sequence[Any]], append: bool
) -> dict[str, Row]:
    """The portal rows of the merge: every record in the filter, or (``append`` off: a sheet
    the team brought) only those whose key is in the sheet, so none is appended to it."""
    from portal.sync.adapters import portal_rows

    if append:
        return portal_rows(spec, filter)
    return portal_rows(spec, filter, keys=list(sheet_keys(spec, rows)))


def _creatable(spec: TrackerSpec, header: Sequence[Any]) -> list[tuple[Column, int]]:
    """The mapped columns a new row's record takes, with their position in the sheet."""
    kind = kind_for(spec)
    where = {header_id(h): i for i, h in enumerate(header)}
    out = []
    for col in spec.columns:
        known = kind.fields.get(col.field)
        i = where.get(header_id(col.header))
        if known is not None and known.creatable and i is not None:
            out.append((col, i))
    return out


def _values(columns: list[tuple[Column, int]], row: Sequence[Any]) -> tuple[Row, list[str]]:
    """field -> typed value of a new row's creatable columns, and what is wrong with them."""
    values: Row = {}
    problems = []
    for col, i in columns:
        try:
            values[col.field] = normalize(col.type, row[i] if i < len(row) else None)
        except ValueParseError as exc:
            problems.append(f"{col.header}: {exc}")
    return values, problems


def _lookup(model: Any, code_col: Any, wanted: set[str]) -> dict[str, int]:
    """upper(code or name) -> id, for the ``wanted`` texts (one query per 500)."""
    found: dict[str, int] = {}
    texts = sorted({w.upper() for w in wanted if w})
    for i in range(0, len(texts), 500):
        chunk = texts[i : i + 500]
        for rid, text in db.session.execute(
            select(model.id, func.upper(code_col)).where(func.upper(code_col).in_(chunk))
        ):
            found.setdefault(text, rid)
    return found


class _Refs:
    """Customers and products the new rows name, found by code or by name in bulk."""

    def __init__(self, rows: Mapping[int, Row]) -> None:
        def texts(name: str) -> set[str]:
            return {str(v[name]) for v in rows.values() if v.get(name)}

        self.tables = {
            "customer": _lookup(Customer, Customer.code, texts("customer")),
            "customer_name": _lookup(Customer, Customer.name, texts("customer_name")),
            "sku": _lookup(Product, Product.sku, texts("sku")),
            "product": _lookup(Product, Product.name, texts("product")),
        }

    def find(self, values: Row, names: tuple[str, str], what: str) -> int:
        """The id of the record the row names by code, else by name; ServiceError if none."""
        given = [str(values[n]) for n in names if values.get(n)]
        for name in names:
            text = values.get(name)
            if text and str(text).upper() in self.tables[name]:
                return self.tables[name][str(text).upper()]
        raise ServiceError(f"no {what} {given[0]}" if given else f"no {what} given")


_ORDER_FIELDS = ("order_date", "requested_date", "customer_po", "incoterm", "notes")
_LINE_FIELDS = ("quantity", "unit_price", "discount_pct")


@dataclass
class _Order:
    """An order a sheet's new rows make (or, ``number`` set, add lines to)."""

    ref: str
    header: dict[str, Any]
    number: str | None = None
    rows: list[int] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)


def _bounded(model: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` if every value is within its column's bounds (the services' rule: date
    window, decimal places, text length), else ServiceError naming each problem."""
    columns = model.__table__.c
    problems = [
        f"{name}: {problem}"
        for name, value in data.items()
        if name in columns and (problem := entered_value_problem(columns[name], value))
    ]
    if isinstance(data.get("quantity", 1), int) and data.get("quantity", 1) <= 0:
        problems.append("quantity: must be a whole number above 0")
    if problems:
        raise ServiceError("; ".join(problems))
    return dict(data)


def _existing_orders(refs: Sequence[str]) -> dict[str, str]:
    """order reference -> number, for the references some order already carries."""
    out: dict[str, str] = {}
    for i in range(0, len(refs), 500):
        query = select(SalesOrder.external_ref, SalesOrder.number).where(
            SalesOrder.external_ref.in_(refs[i : i + 500])
        )
        out.update(dict(db.session.execute(query).all()))
    return out


def _group(
    spec: TrackerSpec, new: Mapping[int, Row], keys: Mapping[int, str], adoption: Adoption
) -> list[_Order]:
    """The orders to create (by order reference), each with its rows and lines; orders the
    portal has already get the new lines."""
    refs = _Refs(new)
    by_lines = spec.kind == "order_lines"
    source = f"tracker:{spec.name}"
    order_refs = {r: str(v.get("order_ref") or "") if by_lines else keys[r] for r, v in new.items()}
    existing = _existing_orders(sorted({ref for ref in order_refs.values() if ref}))
    out: dict[str, _Order] = {}
    for r, values in new.items():
        ref = order_refs[r]
        try:
            if not ref:
                raise ServiceError("no order reference (map the team's order id column)")
            order = out.get(ref)
            if order is None:
                header = _bounded(
                    SalesOrder, {k: values[k] for k in _ORDER_FIELDS if values.get(k) is not None}
                )
                customer = refs.find(values, ("customer", "customer_name"), "customer")
                header.update(customer_id=customer, external_ref=ref, source=source)
                order = out[ref] = _Order(ref, header, existing.get(ref))
            if by_lines:
                line = _bounded(
                    OrderLine, {k: values[k] for k in _LINE_FIELDS if values.get(k) is not None}
                )
                product = refs.find(values, ("sku", "product"), "product")
                order.lines.append({**line, "product_id": product, "external_ref": keys[r]})
            order.rows.append(r)
        except ServiceError as error:
            adoption.refused[r] = error.message
    return list(out.values())


def _reason(error: ServiceError) -> str:
    """A service refusal as one line per row: the fields and what is wrong with them."""
    if isinstance(error, ValidationFailed):
        return "; ".join(
            f"{name.rsplit('.', 1)[-1]}: {', '.join(msgs)}"
            for name, msgs in error.field_errors.items()
        )
    return error.message


def _create(spec: TrackerSpec, batch: list[_Order], adoption: Adoption) -> None:
    """Create the batch's orders in one transaction; if that fails, each on its own."""
    try:
        with unit_of_work():  # numbers read before the commit expires the new orders
            created = orders.orders.create_many(
                [(o.header, o.lines) for o in batch], sheet_actor(spec.name)
            )
            numbers = [order.number for order in created]
    except ServiceError as error:
        db.session.rollback()
        if len(batch) == 1:
            adoption.refused.update(dict.fromkeys(batch[0].rows, _reason(error)))
            return
        for order in batch:
            _create(spec, [order], adoption)
        return
    for order, number in zip(batch, numbers, strict=True):
        adoption.created.update(dict.fromkeys(order.rows, f"added as order {number}"))


def _add_lines(spec: TrackerSpec, order: _Order, adoption: Adoption) -> None:
    """New line rows of an order the portal has: added to it (refused once it is past entry)."""
    try:
        with unit_of_work():
            target = order_by_ref(order.ref)
            orders.add_lines(target, order.lines, sheet_actor(spec.name))
    except ServiceError as error:
        db.session.rollback()
        adoption.refused.update(dict.fromkeys(order.rows, _reason(error)))
        return
    adoption.created.update(dict.fromkeys(order.rows, f"added as a line of order {order.number}"))


def _taken_lines(keys: Sequence[str]) -> set[str]:
    """Line references already used by a line (outside the tracker's filter)."""
    out: set[str] = set()
    for i in range(0, len(keys), 500):
        query = select(OrderLine.external_ref).where(OrderLine.external_ref.in_(keys[i : i + 500]))
        out.update(db.session.execute(query).scalars())
    return out


def adopt_rows(
    spec: TrackerSpec, filter: str | None, rows: Sequence[Sequence[Any]], *, dry: bool
) -> Adoption:
    """Create (or, ``dry``, check) the records of rows whose team key names none yet."""
    adoption = Adoption()
    kind = kind_for(spec)
    if (spec.kind, spec.key_field) not in TEAM_KINDS or not spec.may_create or not rows:
        return adoption
    by_key = sheet_keys(spec, rows)
    single = {k: rs[0] for k, rs in by_key.items() if len(rs) == 1}  # doubled: the engine's
    known = kind.records(None, [], keys=list(single))
    if kind.name == "order_lines":
        known = {**known, **dict.fromkeys(_taken_lines([k for k in single if k not in known]))}
    keys = {r: k for k, r in single.items() if k not in known}
    new: dict[int, Row] = {}
    columns = _creatable(spec, rows[0])
    for r in sorted(keys):
        values, problems = _values(columns, rows[r - 1])
        if problems:
            adoption.refused[r] = "; ".join(problems)
        else:
            new[r] = values
    grouped = _group(spec, new, keys, adoption)
    fresh = [o for o in grouped if o.number is None]
    if dry:
        for order in grouped:
            said = f"a line of order {order.number}" if order.number else f"order {order.ref}"
            adoption.created.update(dict.fromkeys(order.rows, f"would be added as {said}"))
        return adoption
    for i in range(0, len(fresh), BATCH):
        _create(spec, fresh[i : i + BATCH], adoption)
    for order in grouped:
        if order.number is not None:
            _add_lines(spec, order, adoption)
    return adoption
