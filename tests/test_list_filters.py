"""The lists' search filters: a status (and other codes) is chosen from its labels, and a
filter on it finds the records in that status."""

from __future__ import annotations

import json
import re

import pytest

from portal.services import catalog, lifecycle
from tests.conftest import login
from tests.factories import SETUP, make_catalog
from tests.test_order_entry_api import draft

LISTS = {
    "/salesorderview/list/": {"status": ("on_hold", "On hold")},
    "/shipmentview/list/": {
        "status": ("delivered", "Delivered"),
        "delay_reason": ("carrier_delay", "Carrier delay"),
    },
    "/returnview/list/": {"status": ("requested", "Requested")},
    "/creditmemoview/list/": {
        "status": ("requested", "Requested"),
        "reason_code": ("damaged", "Damaged goods"),
    },
    "/disputeview/list/": {
        "status": ("open", "Open"),
        "dispute_type": ("late_delivery", "Late delivery"),
    },
}


def search_fields(html: str) -> dict[str, str]:
    """The search widget's inputs by column (FAB passes them to its filter script as JSON)."""
    call = html[html.index("new AdminFilters(") :].splitlines()
    return json.loads(call[3].strip().rstrip(","))


@pytest.mark.parametrize("path", sorted(LISTS))
def test_a_lists_status_filter_offers_labels_not_typed_codes(clean_db, path: str) -> None:
    page = login(clean_db, "supervisor").get(path)
    assert page.status_code == 200
    fields = search_fields(page.text)
    for column, (code, text) in LISTS[path].items():
        assert re.search(rf'<select[^>]*name="{column}"', fields[column]), fields[column]
        assert f'<option value="{code}">{text}</option>' in fields[column]


def test_the_status_filter_finds_the_orders_in_that_status(clean_db) -> None:
    data = make_catalog()
    kept, confirmed = draft(data), draft(data)
    lifecycle.confirm(confirmed, SETUP)
    page = login(clean_db, "specialist").get("/salesorderview/list/?_flt_0_status=draft").text
    assert f">{kept.number}<" in page and f">{confirmed.number}<" not in page


def test_the_customer_filter_searches_as_you_type_and_keeps_the_active_customer(
    clean_db,
) -> None:
    data = make_catalog()
    mine = draft(data)
    other = catalog.customers.create({"code": "C8", "name": "Zenith Ltd", "credit_limit": 0}, SETUP)
    client = login(clean_db, "specialist")
    field = search_fields(client.get("/salesorderview/list/").text)["customer"]
    assert 'data-picker="/api/v1/lookup/customer"' in field
    assert data.customer.name not in field and other.name not in field  # no customer listed
    path = f"/salesorderview/list/?_flt_0_customer={data.customer.id}"
    filtered = client.get(path).text
    chosen = search_fields(filtered)["customer"]
    assert f'<option value="{data.customer.id}" selected>{data.customer}</option>' in chosen
    assert f">{mine.number}<" in filtered
    assert (
        f">{mine.number}<"
        not in client.get(f"/salesorderview/list/?_flt_0_customer={other.id}").text
    )


@pytest.mark.parametrize("path", sorted(LISTS))
def test_each_list_has_a_quick_search_by_number(clean_db, path: str) -> None:
    client = login(clean_db, "supervisor")
    box = re.search(r'<form[^>]*id="quick-search".*?</form>', client.get(path).text, re.S)
    assert box, path
    name = re.search(r'name="(_flt_\d+_number)"', box.group(0)).group(1)
    assert client.get(f"{path}?{name}=none-such").status_code == 200


def test_the_quick_search_finds_an_order_by_part_of_its_number(clean_db) -> None:
    data = make_catalog()
    first, second = draft(data), draft(data)
    client = login(clean_db, "specialist")
    box = re.search(r'name="(_flt_\d+_number)"', client.get("/salesorderview/list/").text)
    found = client.get(f"/salesorderview/list/?{box.group(1)}={second.number[-3:]}").text
    assert f">{second.number}<" in found and f">{first.number}<" not in found
    assert f'value="{second.number[-3:]}"' in found


def _quick_form(html: str) -> tuple[str, list[tuple[str, str]]]:
    """The quick search box's own field and the hidden fields it sends along."""
    box = re.search(r'<form[^>]*id="quick-search".*?</form>', html, re.S).group(0)
    own = re.search(r'type="search" name="(_flt_\d+_number)"', box).group(1)
    return own, re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', box)


def test_the_quick_search_keeps_the_other_active_filters(clean_db) -> None:
    data = make_catalog()
    kept, confirmed = draft(data), draft(data)
    lifecycle.confirm(confirmed, SETUP)
    client = login(clean_db, "specialist")
    listed = client.get(
        f"/salesorderview/list/?_flt_0_status=draft&_flt_0_customer={data.customer.id}"
        "&_oc_SalesOrderView=number&_od_SalesOrderView=asc&page_SalesOrderView=3"
    ).text
    own, hidden = _quick_form(listed)
    assert sorted(hidden) == [
        ("_flt_0_customer", str(data.customer.id)),
        ("_flt_0_status", "draft"),
        ("_oc_SalesOrderView", "number"),
        ("_od_SalesOrderView", "asc"),
    ]  # the page number is not kept: a new search starts on page 1
    query = "&".join(f"{name}={value}" for name, value in [*hidden, (own, "SO-")])
    found = client.get(f"/salesorderview/list/?{query}").text
    assert f">{kept.number}<" in found and f">{confirmed.number}<" not in found
    again, _ = _quick_form(found)
    assert again == own and 'value="SO-"' in found
