"""Search-as-you-type record pickers for FAB forms: :class:`RecordPicker` renders a
``<select>`` holding only the chosen record, which ``static/orderbridge/picker.js`` turns into
a search box over ``/api/v1/lookup/<kind>``; the form's value is the record (loaded by id),
so a page never lists a whole table of invoices. A view's add form with one uses the
``picker_add.html`` template (it loads the script); a list whose search filters have one
uses :class:`PickerFilters` and ``picker_list.html``."""

from __future__ import annotations

from typing import Any

from flask import request
from markupsafe import Markup, escape
from wtforms import Field
from wtforms.validators import DataRequired

from portal.actions import valid_id
from portal.extensions import db


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
    so the list's other filters combine with it, and the box sends them along)."""

    list_template = "quick_list.html"
    quick_search_column = "number"

    def _get_search_widget(self, form: Any = None, **kwargs: Any) -> Any:
        widgets = super()._get_search_widget(form=form, **kwargs)  # type: ignore[misc]
        column = self.quick_search_column
        found = self._filters.get_search_filters()[column]  # type: ignore[attr-defined]
        kinds = [type(each).__name__ for each in found]
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


class PickerFilters(QuickSearch):
    """A list view mixin: a search filter on a relation given as a :class:`RecordPicker` (in
    ``search_form_extra_fields``) searches as you type instead of listing the whole table,
    and an active filter shows its record as the picker's choice."""

    list_template = "picker_list.html"

    def _get_search_widget(self, form: Any = None, **kwargs: Any) -> Any:
        for name, field in form._fields.items() if form is not None else ():
            if isinstance(field, RecordPicker):
                field.data = _filtered(field.model, name)
        return super()._get_search_widget(form=form, **kwargs)


def _filtered(model: type, column: str) -> Any:
    """The record an active list filter ``_flt_<n>_<column>`` names, if any."""
    for key, value in request.args.items():
        if key.startswith("_flt_") and key.endswith(f"_{column}") and valid_id(value.strip()):
            return db.session.get(model, int(value))
    return None
