"""A refusal shown on a page names the fields by the labels the user sees ("Product: pick
one", "Quantity of line 1: not a whole number"), never the schema's names (``product_id``,
``qty_12``); the REST API keeps the field names, which are its contract."""

from __future__ import annotations

from portal.actions.labels import field_label, refusal_text
from portal.services import inventory
from tests.conftest import api_headers, login
from tests.factories import SETUP, make_catalog
from tests.test_order_entry_api import draft
from tests.test_order_entry_views import flashes


def test_field_names_read_as_labels() -> None:
    assert refusal_text({"product_id": ["pick one"]}) == "Invalid input — Product: pick one"
    assert field_label("qty_12", {12: 3}) == "Quantity of line 3"
    assert field_label("qty_12") == "Quantity of line id 12"
    assert field_label("ship_to_id") == "Ship to"
    assert field_label("some_new_field_id") == "Some new field"
    assert refusal_text({"lines": {0: {"product_id": ["pick one"], "quantity": ["too big"]}}}) == (
        "Invalid input — Line 1 product: pick one; Line 1 quantity: too big"
    )


def test_a_refused_line_form_names_the_field_by_its_label(clean_db) -> None:
    data = make_catalog()
    order = draft(data)
    client = login(clean_db, "specialist")
    refused = client.post(f"/order-lines/add/{order.id}", data={"quantity": "4"})
    assert refused.status_code == 422
    shown = " ".join(text for kind, text in flashes(refused.text) if kind == "danger")
    assert "Product: pick one" in shown and "product_id:" not in refused.text
    api = clean_db.test_client().post(
        f"/api/v1/sales_order/{order.id}/lines",
        json={"quantity": 4},
        headers=api_headers(clean_db, "specialist"),
    )
    assert api.status_code == 422 and "product_id" in api.json["message"]  # the API's names


def test_a_refused_per_line_quantity_names_the_line_as_the_page_shows_it(clean_db) -> None:
    from portal.services import fulfillment, lifecycle

    data = make_catalog(stock=0)
    inventory.receive(data.products[0].id, data.warehouses[0].id, 10, SETUP)
    order = draft(data)
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    line = order.lines[0]
    client = login(clean_db, "specialist")
    refused = client.post(
        f"/salesorderview/ship/{order.id}",
        data={"warehouse_id": str(data.warehouses[0].id), "carrier": "UPS", f"qty_{line.id}": "x"},
    )
    assert refused.status_code == 422
    shown = " ".join(text for kind, text in flashes(refused.text) if kind == "danger")
    assert f"Quantity of line {line.line_no}: not a whole number" in shown, shown
    assert f"qty_{line.id}:" not in shown
