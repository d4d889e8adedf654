"""Search-as-you-type record pickers for FAB forms: :class:`RecordPicker` renders a
``<select>`` holding only the chosen record, which ``static/orderbridge/picker.js`` turns into
a search box over ``/api/v1/lookup/<kind>``; the form's value is the record (loaded by id),
so a page never lists a whole table of invoices. A view's add form with one uses the
``picker_add.html`` template (it loads the script); a list whose search filters have one
uses :class:`PickerFilters` (its ``pickers``: customer, product, order, warehouse, invoice
or tracker, each a relation of the listed model or a condition of its own) and
``picker_list.html``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from flask import request
from flask_appbuilder.models.filters import BaseFilter
from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, false, select
from wtforms import Field
from wtforms.validators import DataRequired, Optional

from portal.actions import valid_id
from portal.extensions import db
from portal.models import Invoice, OrderLine, Product, SalesOrder


class PickerWidget:
    """A ``<select data-picker=…>`` with the chosen record as its only option."""

    def __init__(self, url: str, placeholder: str = "Type a number or customer") -> None:
        self.url = url
        self.placeholder = placeholder

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        chosen = field.data
        option = (
            Markup('<option value="{}" selected>{}</option>').format(chosen.id, str(chosen))
            if chosen is not None
            else Markup('<option value=""></option>')
        )
        return Markup(
            '<select id="{id}" name="{name}" class="form-control" data-picker="{url}"'
            ' data-picker-min="0" data-picker-placeholder="{placeholder}">{option}</select>'
        ).format(
            id=escape(field.id),
            name=escape(field.name),
            url=self.url,
            placeholder=self.placeholder,
            option=option,
        )


class RecordPicker(Field):
    """A record of ``model`` chosen by id through the lookup at ``url``."""

    def __init__(
        self, label: str, model: type, url: str, placeholder: str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("validators", [DataRequired()])
        widget = PickerWidget(url, placeholder) if placeholder else PickerWidget(url)
        super().__init__(label, widget=widget, **kwargs)
        self.model = model

    def process_formdata(self, valuelist: list[str]) -> None:
        text = valuelist[0].strip() if valuelist else ""
        self.data = db.session.get(self.model, int(text)) if valid_id(text) else None
        if text and self.data is None:
            raise ValueError(f"{text} is not one of the records offered")


class QuickSearch:
    """A list view mixin: a quick search box above the list, finding the records whose
    ``quick_search_column`` (their number) contains what was typed (FAB's "Contains" filter,
    so the list's other filters combine with it, and the box sends them along). A list
    without such a column (``None``) has no box."""

    list_template = "quick_list.html"
    quick_search_column: str | None = "number"

    def _get_search_widget(self, form: Any = None, **kwargs: Any) -> Any:
        widgets = super()._get_search_widget(form=form, **kwargs)  # type: ignore[misc]
        column = self.quick_search_column
        found = self._filters.get_search_filters().get(column, ())  # type: ignore[attr-defined]
        kinds = [type(each).__name__ for each in found]
        if "FilterContains" not in kinds:
            return widgets
        name = f"_flt_{kinds.index('FilterContains')}_{column}"
        widgets["quick"] = {
            "name": name,
            "value": request.args.get(name, ""),
            "keep": kept_arguments(name),
        }
        return widgets


KEPT_PREFIXES = ("_flt_", "_oc_", "_od_", "psize_")


def kept_arguments(replaced: str) -> list[tuple[str, str]]:
    """The list's active filters, order and page size (every value of each), which a quick
    search keeps: all but ``replaced`` (the quick search's own) and the page number (a new
    search starts on the first page)."""
    return [
        (name, value)
        for name, values in request.args.lists()
        if name != replaced and name.startswith(KEPT_PREFIXES)
        for value in values
    ]


LOOKUP = "/api/v1/lookup/"
Where = Callable[[int], ColumnElement[bool]]


@dataclass(frozen=True)
class Picked:
    """A list filter on a record chosen with a picker over ``/api/v1/lookup/<kind>``.

    ``column`` names a relation of the listed model (FAB's relation filter applies it), or
    is a name of its own with ``where(id)``, the condition a listed row meets for the
    chosen record (an order "has a line with" the product; a shipment's order is the
    customer's), applied by :class:`PickedFilter`.
    """

    label: str
    model: type
    kind: str
    where: Where | None = None

    @property
    def url(self) -> str:
        """The lookup; a filter finds retired products too (an old order has them)."""
        return f"{LOOKUP}{self.kind}" + ("?include_inactive=1" if self.kind == "product" else "")

    def field(self, required: bool = False) -> RecordPicker:
        """The picker: of a list filter (optional), or of an add form (``required``)."""
        hint = PLACEHOLDERS.get(self.kind, "Type to search")
        checks = [DataRequired()] if required else [Optional()]
        return RecordPicker(self.label, self.model, self.url, hint, validators=checks)


PLACEHOLDERS = {
    "customer": "Type a customer's code or name",
    "product": "Type a SKU or product name",
    "order": "Type an order number",
    "invoice": "Type an invoice number or customer",
    "warehouse": "Type a warehouse code or name",
    "tracker": "Type a tracker's name",
}


def order_of_customer(model: Any) -> Where:
    """``where`` of a customer filter on records of an order (``model.order_id``): the
    order is the customer's (``ix_sales_order_customer_po`` finds them)."""

    def where(customer_id: int) -> ColumnElement[bool]:
        orders = select(SalesOrder.id).where(SalesOrder.customer_id == customer_id)
        return model.order_id.in_(orders)

    return where


def invoice_of_customer(model: Any) -> Where:
    """``where`` of a customer filter on records of an invoice (``model.invoice_id``)."""

    def where(customer_id: int) -> ColumnElement[bool]:
        invoices = select(Invoice.id).where(Invoice.customer_id == customer_id)
        return model.invoice_id.in_(invoices)

    return where


def lines_of_product(record_id: Any, line_record: Any, line_order_line: Any) -> Where:
    """``where`` of a product filter on records whose lines are of order lines (a shipment,
    return or invoice with a line of the product: ``ix_order_line_product``, then the lines'
    order line index)."""

    def where(product_id: int) -> ColumnElement[bool]:
        lines = (
            select(line_record)
            .join(OrderLine, OrderLine.id == line_order_line)
            .where(OrderLine.product_id == product_id)
        )
        return record_id.in_(lines)

    return where


def product_on_lines(record_id: Any, line_record: Any, line_order_line: Any) -> Picked:
    """The product filter of records whose lines are of order lines (:func:`lines_of_product`)."""
    where = lines_of_product(record_id, line_record, line_order_line)
    return Picked("Product", Product, "product", where=where)


class PickedFilter(BaseFilter):
    """The filter of a :class:`Picked` with a ``where``: the rows meeting it for the record
    whose id is the value (a value that is no record id matches nothing; the input guard
    answers it with a 400 before). FAB makes filters again from their class, so each
    picker's ``where`` is a class of its own (:meth:`of`)."""

    name = "Is"
    arg_name = None  # not offered to the REST API's filters
    where: Where

    @classmethod
    def of(cls, column: str, where: Where) -> type[PickedFilter]:
        return type(f"Picked_{column}", (cls,), {"where": staticmethod(where)})

    def apply(self, query: Any, value: Any) -> Any:
        text = str(value).strip()
        return query.filter(self.where(int(text)) if valid_id(text) else false())


class PickerFilters(QuickSearch):
    """A list view mixin: the relation filters named in ``pickers`` are search-as-you-type
    pickers (:class:`Picked`) instead of FAB's drop-down of the whole table, and an active
    filter shows its record as the picker's choice."""

    list_template = "picker_list.html"
    pickers: ClassVar[dict[str, Picked]] = {}

    def _init_properties(self) -> None:
        columns = list(self.search_columns or [])  # type: ignore[has-type]
        own = [name for name, picked in self.pickers.items() if picked.where is not None]
        self.search_columns = columns + [
            name for name in self.pickers if name not in columns and name not in own
        ]
        self.search_form_extra_fields = {
            **(self.search_form_extra_fields or {}),  # type: ignore[has-type]
            **{name: picked.field() for name, picked in self.pickers.items()},
        }
        super()._init_properties()  # type: ignore[misc]
        filters = self._filters  # type: ignore[has-type]
        for name in own:  # FAB knows no filter for a name that is not a column: ours
            kind = PickedFilter.of(name, self.pickers[name].where)  # type: ignore[arg-type]
            found = [kind(name, self.datamodel)]  # type: ignore[attr-defined]
            filters._search_filters[name] = found
            filters._all_filters[name] = found
        self.search_columns += [name for name in own if name not in columns]

    def _get_search_widget(self, form: Any = None, **kwargs: Any) -> Any:
        for name, field in form._fields.items() if form is not None else ():
            if isinstance(field, RecordPicker):
                field.data = _filtered(field.model, name)
        return super()._get_search_widget(form=form, **kwargs)


def _filtered(model: type, column: str) -> Any:
    """The record an active list filter ``_flt_<n>_<column>`` names, if any."""
    for key, value in request.args.items():
        if re.fullmatch(rf"_flt_\d_{column}", key) and valid_id(value.strip()):
            return db.session.get(model, int(value))
    return None
