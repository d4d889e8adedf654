"""Issue 11, "No 500 from input": malformed input is a 4xx naming the field, without SQL.

Each case runs on the suite's database: SQLite, or PostgreSQL when ``DATABASE_URL`` is set
(several of these — lone surrogates, NUL bytes, out-of-range integers, negative offsets,
typed comparisons — failed only there).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.exc import DataError

from portal.extensions import db
from portal.models import AuditEvent, Customer
from portal.services import orders, trackers
from portal.services.base import ConflictError, unit_of_work
from tests.conftest import api_headers, login, wipe_business_tables
from tests.factories import SETUP, make_catalog

SQL_WORDS = ("SELECT", "INSERT", "UPDATE", "psycopg", "sqlalchemy", "[SQL")
HUGE_IDS = ("99999999999999999999", str(2**31))


def assert_refused(response, status: int | tuple[int, ...], *names: str) -> str:
    """``response`` has ``status``, names each of ``names``, and holds no SQL."""
    body = response.get_data(as_text=True)
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, body[:500])
    for name in names:
        assert name in body, (name, body[:500])
    assert not any(word in body for word in SQL_WORDS), body[:500]
    return body


@pytest.fixture(scope="module")
def data(app: Flask) -> Iterator[dict]:
    with app.app_context():
        wipe_business_tables()
        cat = make_catalog()
        order = orders.orders.create_with_lines(
            {"customer_id": cat.customer.id, "customer_po": "PO-1"},
            [{"product_id": cat.products[0].id, "quantity": 2}],
            SETUP,
        )
        yield {"order_id": order.id, "customer_id": cat.customer.id}


@pytest.fixture(scope="module")
def admin(app: Flask) -> dict[str, str]:
    return api_headers(app, "admin")


@pytest.fixture(scope="module")
def web(app: Flask):
    return login(app, "admin")


# --- 1. deeply nested JSON ----------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/v1/security/login"),
        ("POST", "/api/v1/customer/"),
        ("PUT", "/api/v1/sales_order/{order_id}"),
        ("POST", "/api/v1/sales_order/{order_id}/confirm"),
    ],
)
def test_deeply_nested_json_is_400(app: Flask, data, admin, method, url) -> None:
    response = app.test_client().open(
        url.format(**data), method=method, data=DEEP, content_type="application/json",
        headers=admin,
    )  # fmt: skip
    body = assert_refused(response, 400)
    assert response.json["message"].startswith("Request body is nested too deeply"), body


def test_nesting_within_the_limit_and_brackets_in_strings_pass(app: Flask, admin) -> None:
    client = app.test_client()
    shallow = '{"code": "N1", "name": "[[[[' + "[" * 200 + '", "x": ' + "[" * 60 + "]" * 60 + "}"
    response = client.post(
        "/api/v1/customer/", data=shallow, content_type="application/json", headers=admin
    )
    assert response.status_code == 422, response.json  # "x" is unknown: the schema says so
    assert "x" in response.json["message"]


def test_deeply_nested_rison_is_400(app: Flask, admin) -> None:
    q = "(a:" * 5000 + "1" + ")" * 5000
    response = app.test_client().get(f"/api/v1/sales_order/?q={q}", headers=admin)
    assert_refused(response, 400, "q")


# --- 2. text PostgreSQL refuses: lone surrogates, NUL -------------------------------------


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\u0000"])
def test_invalid_character_in_a_json_name_is_400(app: Flask, admin, escape) -> None:
    body = '{"code": "S1", "name": "a' + escape + 'b"}'
    response = app.test_client().post(
        "/api/v1/customer/", data=body, content_type="application/json", headers=admin
    )
    assert_refused(response, 400, "name: contains an invalid character")
    assert response.json["errors"] == {"name": ["contains an invalid character"]}
    with app.app_context():
        assert db.session.query(Customer).filter_by(code="S1").count() == 0


def test_invalid_character_in_a_nested_field_names_its_path(app: Flask, admin) -> None:
    body = '{"customer_id": 1, "lines": [{"note": "ok"}, {"note": "\\ud800"}]}'
    response = app.test_client().post(
        "/api/v1/sales_order/", data=body, content_type="application/json", headers=admin
    )
    assert_refused(response, 400, "lines.1.note: contains an invalid character")


def test_invalid_character_in_a_form_field_or_query_argument_is_400(app: Flask, web) -> None:
    response = web.post("/customerview/add", data={"code": "S2", "name": "a\x00b"})
    assert_refused(response, 400, "name: contains an invalid character")
    response = web.get("/customerview/list/?_flt_0_name=a%00b")
    assert_refused(response, 400, "_flt_0_name: contains an invalid character")
    anonymous = app.test_client().post("/login/", data={"username": "a\x00b", "password": "x"})
    assert_refused(anonymous, 400, "username: contains an invalid character")


def test_invalid_character_in_the_api_query_is_400(app: Flask, admin) -> None:
    response = app.test_client().get(
        "/api/v1/customer/?q=(filters:!((col:name,opr:ct,value:'a%00b')))", headers=admin
    )
    assert_refused(response, 400, "q: contains an invalid character")


# --- 3. page numbers and sizes ------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "abc", "99999999999999999999", "1.5"])
@pytest.mark.parametrize("arg", ["page_SalesOrderView", "psize_SalesOrderView"])
def test_bad_page_arguments_on_a_list_page_are_400(web, arg, value) -> None:
    response = web.get(f"/salesorderview/list/?{arg}={value}")
    assert_refused(response, 400, arg)


def test_good_page_arguments_on_a_list_page_work(web, data) -> None:
    response = web.get("/salesorderview/list/?page_SalesOrderView=0&psize_SalesOrderView=25")
    assert response.status_code == 200


@pytest.mark.parametrize("value", ["-1", "99999999999999999999", "abc"])
def test_bad_page_in_the_api_is_400(app: Flask, admin, value) -> None:
    response = app.test_client().get(f"/api/v1/sales_order/?q=(page:{value})", headers=admin)
    assert_refused(response, 400, "page")


@pytest.mark.parametrize("value", ["-1", "0", "99999999999999999999"])
def test_page_size_in_the_api_is_clamped(app: Flask, admin, data, value) -> None:
    response = app.test_client().get(f"/api/v1/sales_order/?q=(page_size:{value})", headers=admin)
    assert response.status_code == 200, response.json
    assert response.json["count"] == 1


# --- 4. unknown order columns -------------------------------------------------------------


def test_unknown_order_column_is_400(app: Flask, web, admin) -> None:
    response = web.get("/salesorderview/list/?_oc_SalesOrderView=nope&_od_SalesOrderView=asc")
    assert_refused(response, 400, "_oc_SalesOrderView", "nope")
    assert web.get("/salesorderview/list/?_oc_SalesOrderView=number&_od_SalesOrderView=asc")
    response = app.test_client().get(
        "/api/v1/sales_order/?q=(order_column:nope,order_direction:asc)", headers=admin
    )
    assert_refused(response, 400, "nope")


# --- 5. ids beyond 32 bits ----------------------------------------------------------------


def _pk_routes(app: Flask, api: bool) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if "pk" not in rule.arguments or rule.rule.startswith("/api/") != api:
            continue
        methods = rule.methods - {"HEAD", "OPTIONS"}
        method = "GET" if "GET" in methods else sorted(methods)[0]
        routes.append((method, rule.rule.replace("<pk>", "{pk}").replace("<int:pk>", "{pk}")))
    return sorted(set(routes))


def test_every_page_with_an_id_answers_404_for_huge_ids(app: Flask, web) -> None:
    routes = _pk_routes(app, api=False)
    assert {"/salesorderview/show/{pk}", "/invoiceview/print/{pk}"} <= {r for _, r in routes}
    assert any("timeline" in r for _, r in routes)
    for method, route in routes:
        for pk in (*HUGE_IDS, "abc"):
            response = web.open(route.format(pk=pk), method=method)
            assert_refused(response, 404)


def test_every_api_route_with_an_id_answers_404_for_huge_ids(app: Flask, admin) -> None:
    routes = _pk_routes(app, api=True)
    assert len(routes) > 20
    client = app.test_client()
    for method, route in routes:
        for pk in HUGE_IDS:
            response = client.open(route.format(pk=pk), method=method, json={}, headers=admin)
            assert_refused(response, 404)


# --- 6. filter values of the wrong type ---------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "col", "opr", "value"),
    [
        ("sales_order", "customer", "rel_o_m", "abc"),
        ("sales_order", "customer", "rel_o_m", "99999999999999999999"),
        ("customer", "credit_limit", "gt", "abc"),
        ("customer", "credit_limit", "gt", "'1e999999'"),
        ("customer", "active", "eq", "abc"),
        ("customer", "name", "eq", "5"),
        ("sales_order", "revision", "in", "5"),
        ("sales_order", "status", "not_in", "draft"),
    ],
)
def test_filter_values_of_the_wrong_type_are_400(app, admin, resource, col, opr, value) -> None:
    q = f"(filters:!((col:{col},opr:{opr},value:{value})))"
    response = app.test_client().get(f"/api/v1/{resource}/?q={q}", headers=admin)
    assert_refused(response, 400, f"filters.{col}")


def test_filter_values_of_the_right_type_work(app: Flask, admin, data) -> None:
    q = f"(filters:!((col:customer,opr:rel_o_m,value:{data['customer_id']})))"
    response = app.test_client().get(f"/api/v1/sales_order/?q={q}", headers=admin)
    assert response.status_code == 200 and response.json["count"] == 1
    q = "(filters:!((col:active,opr:eq,value:!t),(col:credit_limit,opr:gt,value:'5')))"
    assert app.test_client().get(f"/api/v1/customer/?q={q}", headers=admin).status_code == 200


def test_search_values_on_a_list_page(web) -> None:
    assert_refused(web.get("/customerview/list/?_flt_0_active=abc"), 400, "_flt_0_active")
    assert web.get("/customerview/list/?_flt_0_active=y").status_code == 200
    assert_refused(web.get("/paymentview/list/?_flt_1_amount=abc"), 400, "_flt_1_amount")
    # an amount compares as a number (PostgreSQL refused numeric > text: a 500)
    assert web.get("/paymentview/list/?_flt_1_amount=5").status_code == 200
    assert web.get("/paymentview/list/?_flt_1_amount=").status_code == 200


# --- 7. the job queue down ----------------------------------------------------------------


@pytest.fixture
def redis_down(app: Flask) -> Iterator[None]:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    yield
    app.config["REDIS_URL"] = saved


def _audit_count(app: Flask) -> int:
    with app.app_context():
        return db.session.query(AuditEvent).count()


def test_exports_with_the_queue_down_are_503_and_lose_nothing(
    app: Flask, admin, data, redis_down
) -> None:
    client = app.test_client()
    before = _audit_count(app)
    response = client.get("/api/v1/invoice/export?format=csv&async=1", headers=admin)
    assert_refused(response, 503, "try again")
    assert _audit_count(app) == before  # no export recorded for a job that was never queued
    response = client.get("/api/v1/invoice/export/some-job", headers=admin)
    assert_refused(response, 503, "try again")


def test_sync_now_and_queue_page_with_the_queue_down_say_so(app: Flask, web, redis_down) -> None:
    with app.app_context():
        tracker = trackers.trackers.create(
            {"name": "down", "kind": "orders", "location": "/tmp/none.xlsx", "tab": "Orders"},
            SETUP,
        )
        tracker_id = tracker.id
    response = web.post(f"/trackerview/sync/{tracker_id}", follow_redirects=True)
    assert_refused(response, 200, "The job queue is unavailable; try again")
    assert_refused(web.get("/queues/"), 200, "The job queue is unavailable; try again")


# --- 8. database errors told in words -----------------------------------------------------


def test_a_database_refusal_names_the_field_without_sql(ctx, data) -> None:
    with pytest.raises(ConflictError) as caught, unit_of_work() as sess:
        sess.add(Customer(code="C1", name="Duplicate"))
    assert caught.value.message.endswith("code is already in use.")
    assert caught.value.field_errors == {"code": ["is already in use"]}
    with pytest.raises(ConflictError) as caught, unit_of_work() as sess:
        sess.add(Customer(code="C8", name="Orphan", payment_term_id=2**30))
    assert "payment_term_id refers to a record that does not exist" in caught.value.message or (
        "a value refers to a record that does not exist" in caught.value.message  # SQLite
    )
    with pytest.raises(ConflictError) as caught, unit_of_work() as sess:
        sess.add(Customer(code="C9", name="Negative", credit_limit=-1))
    assert caught.value.field_errors == {"credit_limit": ["is out of the allowed range"]}
    for message in (str(caught.value),):
        assert not any(word in message for word in SQL_WORDS), message


def test_a_database_error_in_an_api_route_is_400_without_sql(
    app: Flask, admin, monkeypatch
) -> None:
    from portal.services import exports

    def refuse(*args, **kwargs):
        raise DataError("SELECT secret FROM invoice", {"x": 1}, Exception("bad value"))

    monkeypatch.setattr(exports, "count", refuse)
    response = app.test_client().get("/api/v1/invoice/export?format=csv", headers=admin)
    body = assert_refused(response, 400, "out of range or of the wrong type")
    assert "secret" not in body


# --- 9. the safety net --------------------------------------------------------------------


def test_an_unexpected_api_error_is_a_json_500_without_internals(
    app: Flask, admin, monkeypatch
) -> None:
    from portal import inputguard

    def crash() -> None:
        raise RuntimeError("SELECT secret")

    monkeypatch.setattr(inputguard, "_check_pk", crash)
    response = app.test_client().get("/api/v1/customer/", headers=admin)
    assert response.status_code == 500
    assert response.json == {"message": "Internal error; it has been logged"}
