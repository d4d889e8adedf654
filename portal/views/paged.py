"""Every HTML list's paging (``portal/paging.py``): the count without a scan ("about
1,000,000" above ``LIST_EXACT_COUNT_LIMIT``) and Previous/Next links that page by key with a
``cursor_<View>`` argument; the page numbers stay, for a user who asks for a page."""

from __future__ import annotations

import functools
from typing import Any

from flask import abort, request, url_for
from flask_appbuilder.widgets import ListWidget

from portal.paging import CursorError, Page, PagedInterface, SortChanged


class PagedListWidget(ListWidget):
    """FAB's list table, with the count as found and Previous/Next links."""

    template = "paged_list_widget.html"


def _link(view: str, cursor: str | None) -> str | None:
    """This list's URL with ``cursor`` in place of any page number or cursor given."""
    if cursor is None:
        return None
    args = request.args.to_dict()
    args.pop(f"page_{view}", None)
    args[f"cursor_{view}"] = cursor
    return url_for(request.endpoint, **{**(request.view_args or {}), **args})


class PagedListMixin:
    """A ModelView whose list counts and pages through :class:`PagedInterface`.

    ``keyset_ties`` breaks a sort's ties on more columns before the id (the orders list
    sorted by status is in date order within a status).
    """

    list_widget = PagedListWidget
    keyset_ties: dict[str, tuple[str, ...]] = {}

    def __init__(self, **kwargs: Any) -> None:
        model = self.datamodel
        if not isinstance(model, PagedInterface):
            self.datamodel = PagedInterface(model.obj, model.session)
        super().__init__(**kwargs)

    def _asked_cursor(self, name: str) -> str | None:
        """The list's cursor argument, unless the user asked for a page by number."""
        if f"page_{name}" in request.args:
            return None
        return request.args.get(f"cursor_{name}") or None

    def _get_list_widget(
        self,
        filters: Any,
        actions: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        widgets: dict | None = None,
        **kwargs: Any,
    ) -> dict:
        widgets = widgets or {}
        actions = actions or self.actions
        page_size = page_size or self.page_size
        name = self.__class__.__name__
        if not order_column and self.base_order:
            order_column, order_direction = self.base_order
        found = self._find(filters, order_column, order_direction, page, page_size)
        items = found.items
        widgets["list"] = self.list_widget(
            label_columns=self.label_columns,
            include_columns=self.list_columns,
            value_columns=self.datamodel.get_values(items, self.list_columns),
            order_columns=self.order_columns,
            formatters_columns=self.formatters_columns,
            page=found.page,
            page_size=page_size,
            count=found.count.value,
            count_is_estimate=found.count.estimate,
            next_link=_link(name, found.next),
            previous_link=_link(name, found.previous),
            pks=self.datamodel.get_keys(items),
            actions=actions,
            filters=filters,
            modelview_name=name,
            **kwargs,
        )
        return widgets

    def _find(
        self, filters: Any, order_column: str, order_direction: str, page: Any, page_size: int
    ) -> Page:
        joined = filters.get_joined_filters(self._base_filters)
        find = functools.partial(
            self.datamodel.find_page,
            joined,
            order_column,
            order_direction,
            page=page,
            page_size=page_size,
            ties=self.keyset_ties,
            related=tuple(
                name
                for name in self.list_columns
                if self.datamodel.is_relation_many_to_one(name.partition(".")[0])
            ),
        )
        try:
            return find(cursor=self._asked_cursor(self.__class__.__name__))
        except SortChanged:
            return find(cursor=None)  # the user sorted the list anew: its first page
        except CursorError as error:
            abort(400, description=str(error))
