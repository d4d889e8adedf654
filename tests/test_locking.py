"""Optimistic locking: a stale edit gets a clear 409 or flash; nothing is overwritten."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Customer
from portal.services import catalog, orders
from portal.services.base import ConflictError
from tests.conftest import actor, api_headers, login
from tests.factories import SETUP, make_catalog


def _flashes(html: str) -> list[str]:
    found = re.findall(r'<div class="alert alert-[a-z]+">(.*?)</div>', html, re.S)
    return [re.sub(r"<[^>]+>|&times;|\s+", " ", item).strip() for item in found]


def test_api_put_with_stale_version_is_409_and_keeps_the_first_edit(clean_db) -> None:
    app: Flask = clean_db
    data = make_catalog()
    url = f"/api/v1/customer/{data.customer.id}"
    headers = api_headers(app, "supervisor")
    client = app.test_client()
    first = client.put(url, json={"name": "First edit", "version": 1}, headers=headers)
    assert first.status_code == 200 and first.json["result"]["version"] == 2
    second = client.put(url, json={"name": "Second edit", "version": 1}, headers=headers)
    assert second.status_code == 409
    assert "changed by someone else" in second.json["message"]
    assert second.json["errors"]["version"]
    assert client.get(url, headers=headers).json["result"]["name"] == "First edit"


def test_ui_edit_with_stale_version_flashes_and_keeps_the_first_edit(clean_db) -> None:
    app: Flask = clean_db
    data = make_catalog()
    order = orders.orders.create_with_lines(
        {"customer_id": data.customer.id},
        [{"product_id": data.products[0].id, "quantity": 1}],
        SETUP,
    )
    client = login(app, "specialist")
    url = f"/salesorderview/edit/{order.id}"
    ok = client.post(url, data={"customer_po": "PO-A", "version": "1"}, follow_redirects=True)
    assert any("Changed" in f for f in _flashes(ok.text)), _flashes(ok.text)
    stale = client.post(url, data={"customer_po": "PO-B", "version": "1"}, follow_redirects=True)
    assert any("changed by someone else" in f for f in _flashes(stale.text))
    db.session.expire_all()
    assert db.session.get(type(order), order.id).customer_po == "PO-A"


def test_service_rejects_a_stale_expected_version(clean_db) -> None:
    data = make_catalog()
    catalog.customers.update(data.customer, {"name": "A"}, actor("supervisor"))
    with pytest.raises(ConflictError):
        catalog.customers.update(
            data.customer, {"name": "B"}, actor("supervisor"), expected_version=1
        )


def test_concurrent_writers_cannot_both_win(clean_db) -> None:
    """Two sessions load version 1 and both update; the database lets only one through."""
    app: Flask = clean_db
    data = make_catalog()
    customer_id = data.customer.id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def edit(limit: str) -> None:
        with app.app_context():
            customer = db.session.get(Customer, customer_id)
            barrier.wait()
            try:
                catalog.customers.update(
                    customer, {"credit_limit": Decimal(limit)}, actor("supervisor")
                )
                outcomes.append("ok")
            except ConflictError:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=edit, args=(v,)) for v in ("111.00", "222.00")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    db.session.expire_all()
    assert db.session.get(Customer, customer_id).version == 2
