"""Rows of a team's sheet that name no record yet: created in batches, or refused per row.

A tracker keyed on the team's own references (:mod:`portal.sync.team_keys`) meets rows whose
key no record carries. When the tracker may create, :func:`adopt_rows` turns them into orders
(with their lines, for one-row-per-line sheets) through the import service's history path
(:mod:`portal.sync.adopt_import`: set-based, dates kept as given, customers and products
found by code or name); a new line row of an order the portal has is added to that order.
A row that cannot become a record is refused with the reason;
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
from portal.models import Customer, OrderLine, Product
from portal.services import orders
from portal.services.base import Actor, ServiceError, ValidationFailed, unit_of_work
from portal.services.bounds import entered_value_problem
from portal.sync.adopt_import import import_new, orders_by_ref
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


_LINE_FIELDS = ("quantity", "unit_price", "discount_pct")


@dataclass
class _Order:
    """An order the portal has, and the lines a sheet's new rows add to it."""

    ref: str
    number: str
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


def _group(
    spec: TrackerSpec,
    new: Mapping[int, Row],
    keys: Mapping[int, str],
    existing: Mapping[str, str],
    adoption: Adoption,
) -> list[_Order]:
    """The new line rows of orders the portal has (``existing``: reference -> number),
    grouped by order."""
    refs = _Refs(new)
    out: dict[str, _Order] = {}
    for r, values in new.items():
        ref = str(values.get("order_ref") or "")
        order = out.setdefault(ref, _Order(ref, existing[ref]))
        try:
            line = _bounded(
                OrderLine, {k: values[k] for k in _LINE_FIELDS if values.get(k) is not None}
            )
            product = refs.find(values, ("sku", "product"), "product")
            order.lines.append({**line, "product_id": product, "external_ref": keys[r]})
            order.rows.append(r)
        except ServiceError as error:
            adoption.refused[r] = error.message
    return [order for order in out.values() if order.rows]


def _reason(error: ServiceError) -> str:
    """A service refusal as one line per row: the fields and what is wrong with them."""
    if isinstance(error, ValidationFailed):
        return "; ".join(
            f"{name.rsplit('.', 1)[-1]}: {', '.join(msgs)}"
            for name, msgs in error.field_errors.items()
        )
    return error.message


def _add_lines(spec: TrackerSpec, order: _Order, adoption: Adoption, actor: Actor | None) -> None:
    """New line rows of an order the portal has: added to it (refused once it is past entry)."""
    try:
        with unit_of_work():
            target = order_by_ref(order.ref)
            orders.add_lines(target, order.lines, sheet_actor(spec.name, actor))
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
    spec: TrackerSpec,
    filter: str | None,
    rows: Sequence[Sequence[Any]],
    *,
    dry: bool,
    actor: Actor | None = None,
) -> Adoption:
    """Create (or, ``dry``, check) the records of rows whose team key names none yet (as
    ``actor``, default the tracker's system actor)."""
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
    columns = _creatable(spec, rows[0])
    existing, numbers = _of_existing_orders(spec, columns, rows, keys)
    fresh = {r: rows[r - 1] for r in keys if r not in existing}
    created, refused = import_new(spec, rows[0], fresh, keys, dry=dry, actor=actor)
    adoption.created.update(created)
    adoption.refused.update(refused)
    new: dict[int, Row] = {}
    for r in sorted(existing):
        values, problems = _values(columns, rows[r - 1])
        if problems:
            adoption.refused[r] = "; ".join(problems)
        else:
            new[r] = values
    for order in _group(spec, new, keys, numbers, adoption):
        if dry:
            said = f"would be added as a line of order {order.number}"
            adoption.created.update(dict.fromkeys(order.rows, said))
        else:
            _add_lines(spec, order, adoption, actor)
    return adoption


def _of_existing_orders(
    spec: TrackerSpec,
    columns: list[tuple[Column, int]],
    rows: Sequence[Sequence[Any]],
    keys: Mapping[int, str],
) -> tuple[dict[int, str], dict[str, str]]:
    """The new line rows whose order the portal has (row -> that order's reference), and
    those orders' numbers by reference."""
    at = next((i for col, i in columns if col.field == "order_ref"), None)
    if spec.kind != "order_lines" or at is None:
        return {}, {}
    refs = {}
    for r in keys:
        row = rows[r - 1]
        ref = normalize_key(row[at]) if at < len(row) else None
        if ref is not None:
            refs[r] = ref
    existing = orders_by_ref(sorted(set(refs.values())))
    return {r: ref for r, ref in refs.items() if ref in existing}, existing
