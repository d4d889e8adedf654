"""Search-as-you-type record pickers for FAB forms: :class:`RecordPicker` renders a
``<select>`` holding only the chosen record, which ``static/orderbridge/picker.js`` turns into
a search box over ``/api/v1/lookup/<kind>``; the form's value is the record (loaded by id),
so a page never lists a whole table of invoices. A view's add form with one uses the
``picker_add.html`` template (it loads the script)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from wtforms import Field
from wtforms.validators import DataRequired

from portal.actions import valid_id
from portal.extensions import db


class PickerWidget:
    """A ``<select data-picker=…>`` with the chosen record as its only option."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        chosen = field.data
        option = (
            Markup('<option value="{}" selected>{}</option>').format(chosen.id, str(chosen))
            if chosen is not None
            else Markup('<option value=""></option>')
        )
        return Markup(
            '<select id="{id}" name="{name}" class="form-control" data-picker="{url}"'
            ' data-picker-min="0" data-picker-placeholder="Type a number or customer">'
            "{option}</select>"
        ).format(id=escape(field.id), name=escape(field.name), url=self.url, option=option)


class RecordPicker(Field):
    """A record of ``model`` chosen by id through the lookup at ``url``."""

    def __init__(self, label: str, model: type, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [DataRequired()])
        super().__init__(label, widget=PickerWidget(url), **kwargs)
        self.model = model

    def process_formdata(self, valuelist: list[str]) -> None:
        text = valuelist[0].strip() if valuelist else ""
        self.data = db.session.get(self.model, int(text)) if valid_id(text) else None
        if text and self.data is None:
            raise ValueError(f"{text} is not one of the records offered")
