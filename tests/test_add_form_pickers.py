"""The add forms of addresses, contacts and price breaks choose their customer or product by
search-as-you-type (issue 14: no page lists a whole table), and a record added through them
is stored through the service with the chosen record."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import CustomerAddress, CustomerContact, PriceListItem
from portal.services import catalog
from tests.conftest import login
from tests.factories import SETUP, make_catalog


def test_the_add_forms_pick_by_search_and_store_the_choice(clean_db) -> None:
    data = make_catalog()
    customer, product = data.customer, data.products[0]
    price_list = catalog.price_lists.create({"name": "Trade"}, SETUP)
    client = login(clean_db, "admin")
    for path in ("/customeraddressview/add", "/customercontactview/add"):
        form = client.get(path).get_data(as_text=True)
        assert "/api/v1/lookup/customer" in form, path
        assert customer.name not in form, f"{path} lists the customers"
    form = client.get("/pricelistitemview/add").get_data(as_text=True)
    assert "/api/v1/lookup/product" in form
    assert product.name not in form, "the price-break form lists the products"

    added = client.post(
        "/customeraddressview/add",
        data={"customer": str(customer.id), "label": "Dock 9", "line1": "9 Pier Road",
              "city": "Leeds", "postal_code": "LS1 1AA", "country": "GB"},
    )  # fmt: skip
    assert added.status_code == 302, added.get_data(as_text=True)
    address = db.session.scalars(select(CustomerAddress).filter_by(label="Dock 9")).one()
    assert address.customer_id == customer.id
    added = client.post(
        "/customercontactview/add",
        data={"customer": str(customer.id), "name": "Dana Dock", "email": "dana@acme.example"},
    )
    assert added.status_code == 302, added.get_data(as_text=True)
    contact = db.session.scalars(select(CustomerContact).filter_by(name="Dana Dock")).one()
    assert contact.customer_id == customer.id
    added = client.post(
        "/pricelistitemview/add",
        data={"price_list": str(price_list.id), "product": str(product.id),
              "min_quantity": "500", "unit_price": "1.25"},
    )  # fmt: skip
    assert added.status_code == 302, added.get_data(as_text=True)
    item = db.session.scalars(select(PriceListItem).filter_by(min_quantity=500)).one()
    assert item.product_id == product.id

    refused = client.post(
        "/customercontactview/add", data={"customer": "", "name": "Nobody"}, follow_redirects=True
    )
    assert "This field is required" in refused.get_data(as_text=True)
    assert db.session.scalars(select(CustomerContact).filter_by(name="Nobody")).first() is None
