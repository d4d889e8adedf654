"""Every relation filter of every list is a search-as-you-type picker over
``/api/v1/lookup/<kind>`` (customer, product, order, warehouse, invoice, tracker), never a
drop-down of a whole table; the orders list filters by product ("has a line with"), the
shipments, returns, invoices, credit memos and disputes lists by customer; an active filter
shows its record as the picker's choice; a filter value that is no record is a 400 naming
the filter; and each list loads what it shows in a number of statements that does not grow
with its rows."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from flask_appbuilder.baseviews import BaseCRUDView
from sqlalchemy import inspect

from portal.extensions import appbuilder, db
from portal.models import (
    Customer,
    CustomerAddress,
    Invoice,
    OrderLine,
    Product,
    SalesOrder,
    Shipment,
    ShipmentLine,
    Tracker,
    Warehouse,
    utcnow,
)
from portal.services import catalog, credits, disputes, invoices, orders, returns, trackers
from tests.conftest import actor, login
from tests.factories import SETUP, Catalog, make_catalog
from tests.test_finance import shipped_order
from tests.test_list_filters import search_fields
from tests.test_lookups import counted_queries

# the tables a drop-down must never list (master data such as payment terms and price lists
# is a handful of rows)
BIG_TABLES = (
    Customer,
    CustomerAddress,
    Invoice,
    OrderLine,
    Product,
    SalesOrder,
    Shipment,
    ShipmentLine,
    Tracker,
    Warehouse,
)
# list path -> (column, lookup kind) of each relation filter, as the user picks them
PICKERS = {
    "/salesorderview/list/": {"customer": "customer", "product": "product"},
    "/orderlineview/list/": {"order": "order", "product": "product"},
    "/shipmentview/list/": {
        "customer": "customer",
        "order": "order",
        "warehouse": "warehouse",
        "product": "product",
    },
    "/returnview/list/": {
        "customer": "customer",
        "order": "order",
        "warehouse": "warehouse",
        "product": "product",
    },
    "/invoiceview/list/": {"customer": "customer", "product": "product"},
    "/creditmemoview/list/": {"customer": "customer", "invoice": "invoice"},
    "/creditapprovalview/list/": {"customer": "customer", "invoice": "invoice"},
    "/disputeview/list/": {"customer": "customer", "invoice": "invoice"},
    "/paymentview/list/": {"invoice": "invoice"},
    "/stocklevelview/list/": {"product": "product", "warehouse": "warehouse"},
    "/stockreceiptview/list/": {"product": "product", "warehouse": "warehouse"},
    "/notificationview/list/": {"order": "order"},
    "/syncrunview/list/": {"tracker": "tracker"},
    "/syncconflictview/list/": {"tracker": "tracker"},
    "/syncdeletedrowview/list/": {"tracker": "tracker"},
}


def test_no_list_offers_a_relation_filter_that_is_not_a_picker(ctx) -> None:
    """Walks every list of the portal: a searchable relation to one of the big tables is one
    of its pickers, and no list searches a collection (FAB would list the whole table)."""
    plain: list[str] = []
    for view in appbuilder.baseviews:
        datamodel = view.datamodel if isinstance(view, BaseCRUDView) else None
        if not isinstance(view, BaseCRUDView) or not type(view).__module__.startswith("portal."):
            continue  # the REST APIs' filters take ids and list nothing
        pickers = getattr(view, "pickers", {})
        relations = inspect(datamodel.obj).relationships
        for column in getattr(view, "search_columns", None) or ():
            relation = relations.get(column)
            if relation is None or column in pickers:
                continue
            if relation.uselist or relation.mapper.class_ in BIG_TABLES:
                plain.append(f"{type(view).__name__}.{column}")
    assert plain == [], "\n".join(plain)


@pytest.mark.parametrize("path", sorted(PICKERS))
def test_each_relation_filter_is_a_picker_listing_no_record(clean_db, path: str) -> None:
    data = make_catalog()
    page = login(clean_db, "admin").get(path)
    assert page.status_code == 200, path
    fields = search_fields(page.text)
    for column, kind in PICKERS[path].items():
        assert f'data-picker="/api/v1/lookup/{kind}' in fields[column], (path, column)
        assert fields[column].count("<option") == 1, (path, column)  # the empty choice only
    assert data.customer.name not in "".join(fields.values())
    assert "picker.js" in page.text


def _second_customer(data: Catalog, code: str = "C2") -> Catalog:
    """Catalog ``data`` as seen by another customer (same products and warehouses)."""
    other = catalog.customers.create(
        {"code": code, "name": f"Zenith {code} Ltd", "credit_limit": Decimal("100000.00")},
        SETUP,
    )
    catalog.customer_addresses.create(
        {
            "customer_id": other.id,
            "line1": "2 Quay",
            "city": "Hull",
            "postal_code": "HU1 1AA",
            "country": "GB",
            "is_default_ship_to": True,
        },
        SETUP,
    )
    other.payment_term_id = data.customer.payment_term_id
    return Catalog(other, data.products, data.warehouses)


def _order(data: Catalog, *product_ids: int):
    return orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": f"PO-{utcnow().timestamp()}",
            "requested_date": utcnow().date() + timedelta(days=30),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": product_id, "quantity": 2} for product_id in product_ids],
        SETUP,
    )


def _shown(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.text[:300])
    return page.text


def test_the_orders_list_filters_by_a_product_on_any_line(clean_db) -> None:
    data = make_catalog()
    first, second = data.products[0], data.products[1]
    with_first = _order(data, first.id)
    with_both = _order(data, first.id, second.id)
    with_second = _order(data, second.id)
    client = login(clean_db, "specialist")
    found = _shown(client, f"/salesorderview/list/?_flt_0_product={second.id}")
    assert set(re.findall(r">(SO-\d+)<", found)) == {with_both.number, with_second.number}
    chosen = search_fields(found)["product"]
    assert f'<option value="{second.id}" selected>{second}</option>' in chosen
    assert 'data-picker="/api/v1/lookup/product?include_inactive=1"' in chosen
    by_first = _shown(client, f"/salesorderview/list/?_flt_0_product={first.id}")
    assert set(re.findall(r">(SO-\d+)<", by_first)) == {with_first.number, with_both.number}
    status_too = f"/salesorderview/list/?_flt_0_product={first.id}&_flt_0_status=confirmed"
    assert re.findall(r">(SO-\d+)<", _shown(client, status_too)) == []


def _business(data: Catalog, quantities: tuple[int, ...] = (3,)) -> dict[str, str]:
    """One shipment, return, invoice, credit memo and dispute of ``data``'s customer (of
    ``quantities`` of the products): the number each list shows for it."""
    order, shipment = shipped_order(data, quantities)
    rma = returns.request_return(
        order, actor("specialist"), lines={order.lines[0].id: 1}, reason="dented", warehouse_id=1
    )
    invoice = invoices.invoice_shipment(shipment, actor("specialist"))
    memo = credits.request_credit(
        invoice, actor("specialist"), reason_code="damaged", amount="1.00"
    )
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="shortage", amount="1.00"
    )
    return {
        "/shipmentview/list/": shipment.number,
        "/returnview/list/": rma.number,
        "/invoiceview/list/": invoice.number,
        "/creditmemoview/list/": memo.number,
        "/creditapprovalview/list/": memo.number,
        "/disputeview/list/": dispute.number,
    }


def test_the_business_lists_filter_by_customer(clean_db) -> None:
    data = make_catalog(stock=500)
    other = _second_customer(data)
    mine, theirs = _business(data), _business(other)
    client = login(clean_db, "supervisor")
    for path, number in mine.items():
        found = _shown(client, f"{path}?_flt_0_customer={data.customer.id}")
        assert f">{number}<" in found and f">{theirs[path]}<" not in found, path
        chosen = search_fields(found)["customer"]
        assert f'<option value="{data.customer.id}" selected>' in chosen, path
        other_side = _shown(client, f"{path}?_flt_0_customer={other.customer.id}")
        assert f">{theirs[path]}<" in other_side and f">{number}<" not in other_side, path


def test_order_warehouse_invoice_and_tracker_filters_find_their_rows(clean_db) -> None:
    data = make_catalog(stock=500)
    first, shipment = shipped_order(data, (2,))
    second, _ = shipped_order(data, (1,))
    client = login(clean_db, "supervisor")
    by_order = _shown(client, f"/shipmentview/list/?_flt_0_order={first.id}")
    assert f">{shipment.number}<" in by_order and ">SH-000002<" not in by_order
    lines = _shown(client, f"/orderlineview/list/?_flt_0_order={second.id}")
    assert search_fields(lines)["order"].count("selected") == 1
    stock = _shown(client, f"/stocklevelview/list/?_flt_0_warehouse={data.warehouses[1].id}")
    assert "<td>W1 Main</td>" not in stock
    assert "<td>W1 Main</td>" in _shown(client, "/stocklevelview/list/")
    tracker = trackers.trackers.create(
        {
            "name": "Open orders",
            "kind": "orders",
            "backend": "xlsx",
            "location": "x.xlsx",
            "tab": "Orders",
        },
        SETUP,
    )
    runs = _shown(client, f"/syncrunview/list/?_flt_0_tracker={tracker.id}")
    assert (
        f'<option value="{tracker.id}" selected>Open orders</option>'
        in search_fields(runs)["tracker"]
    )


def test_bad_picker_values_are_a_400_naming_the_filter(clean_db) -> None:
    client = login(clean_db, "specialist")
    for path in (
        "/salesorderview/list/?_flt_0_product=abc",
        "/shipmentview/list/?_flt_0_customer=",
    ):
        answer = client.get(path)
        assert answer.status_code == 400, path
        assert "filter: choose one of the records offered" in answer.text


def _statements(client, path: str) -> int:
    db.session.remove()
    with counted_queries() as statements:
        assert client.get(path).status_code == 200, path
    return len(statements)


LISTS_COUNTED = [
    "/salesorderview/list/?_flt_0_customer={customer}&_flt_0_product={product}",
    "/orderlineview/list/?_flt_0_product={product}",
    "/shipmentview/list/?_flt_0_customer={customer}",
    "/shipmentview/list/",
    "/returnview/list/?_flt_0_customer={customer}",
    "/returnview/list/",
    "/invoiceview/list/?_flt_0_customer={customer}",
    "/invoiceview/list/",
    "/creditmemoview/list/?_flt_0_customer={customer}",
    "/creditmemoview/list/",
    "/creditapprovalview/list/",
    "/disputeview/list/?_flt_0_customer={customer}",
    "/disputeview/list/",
    "/paymentview/list/",
    "/stocklevelview/list/?_flt_0_warehouse={warehouse}",
    "/stockreceiptview/list/",
    "/notificationview/list/",
    "/openordersview/list/",
    "/customeraddressview/list/",
    "/customercontactview/list/",
    "/invoicelineview/list/",
]


def test_each_list_loads_what_it_shows_in_statements_that_do_not_grow_with_its_rows(
    clean_db,
) -> None:
    data = make_catalog(stock=2000)
    _business(data)
    client = login(clean_db, "supervisor")
    args = {
        "customer": data.customer.id,
        "product": data.products[0].id,
        "warehouse": data.warehouses[0].id,
    }
    paths = [path.format(**args) for path in LISTS_COUNTED]
    ids = (
        data.customer.id,
        [product.id for product in data.products],
        [warehouse.id for warehouse in data.warehouses],
    )
    client.get(paths[0])  # the process's caches filled
    few = {path: _statements(client, path) for path in paths}
    data = Catalog(
        db.session.get(Customer, ids[0]),
        [db.session.get(Product, n) for n in ids[1]],
        [db.session.get(Warehouse, n) for n in ids[2]],
    )
    for code in ("C3", "C4", "C5"):  # more rows, each of other customers, orders, invoices
        more = _second_customer(data, code)
        _business(more)
        _business(data)
    many = {path: _statements(client, path) for path in paths}
    assert many == few
    assert max(few.values()) <= 12, few


def test_shipments_returns_and_invoices_filter_by_a_product_on_their_lines(clean_db) -> None:
    data = make_catalog(stock=500)
    first, second = _business(data, (3,)), _business(data, (0, 2))
    client = login(clean_db, "supervisor")
    product = data.products[1].id
    for path in ("/shipmentview/list/", "/returnview/list/", "/invoiceview/list/"):
        found = _shown(client, f"{path}?_flt_0_product={product}")
        assert f">{second[path]}<" in found and f">{first[path]}<" not in found, path
