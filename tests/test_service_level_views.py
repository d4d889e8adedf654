"""The Service levels page, its drill-downs, the targets form and the improvement log pages
(the orders of ``test_service_levels``), through the browser-like test client."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.models import ImprovementAction, utcnow
from portal.services import service_levels as sl
from tests.conftest import login, wipe_business_tables
from tests.test_service_levels import build


@pytest.fixture(scope="module")
def orders(app) -> dict[str, Any]:
    from portal.extensions import db

    with app.app_context():
        wipe_business_tables()
        day = sl.week_of(utcnow().date() - timedelta(days=21)).start
        numbers = build(day)
        db.session.remove()
    return {"week": sl.week_of(day), **numbers}


def _numbers(html: str) -> list[str]:
    table = html.split('id="drilldown-orders"', 1)[1]
    return re.findall(r">(SO-\d+)</a>", table)


def test_page_shows_each_figure_against_its_target_with_svg_charts(app, ctx, orders) -> None:
    page = login(app, "specialist").get(f"/service-levels/?week={orders['week'].label}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    tile = html.split('id="kpi-otif_order"', 1)[1].split('id="kpi-', 1)[0]
    assert "40.0 %" in tile and "Target 95.0 %" in tile and "off target" in tile
    assert tile.count("<svg") == 1 and "<polyline" not in tile  # one week of data: a point
    assert 'id="pareto"' in html and html.count('class="ob-pareto-bar"') == 5
    assert "None" not in html and '<script src="http' not in html
    assert 'id="download-workbook"' in html
    assert 'id="edit-targets"' not in html  # Specialists do not set targets
    assert "Log an improvement" in html


def test_a_figure_drills_down_to_the_orders_behind_it(app, ctx, orders) -> None:
    client = login(app, "supervisor")
    week = orders["week"].label
    missed = client.get(f"/service-levels/orders?metric=otif_order&week={week}&missed=1")
    html = missed.get_data(as_text=True)
    assert _numbers(html) == [orders["b"], orders["c"], orders["f"]]
    assert f"Orders that missed OTIF (orders), {week}" in html
    assert "Partially shipped" in html and "Partially allocated" in html  # labels, not codes
    assert "partially_" not in re.sub(r'class="[^"]*"', "", html.split('id="drilldown', 1)[1])
    every = client.get(f"/service-levels/orders?metric=otif_order&week={week}")
    assert len(_numbers(every.get_data(as_text=True))) == 5
    bar = client.get(f"/service-levels/cause?week={week}&source=backorder&cause=stock_shortage")
    assert _numbers(bar.get_data(as_text=True)) == [orders["f"]]
    assert f"Backorder: Stock shortage, {week}" in bar.get_data(as_text=True)
    typed = client.get(f"/service-levels/cause?week={week}&source=return&cause=damaged+in+transit")
    assert f"Return: Damaged in transit, {week}" in typed.get_data(as_text=True)
    bad = client.get(f"/service-levels/orders?metric=speed&week={week}")
    assert bad.status_code == 422 and "unknown metric" in bad.get_data(as_text=True)
    odd = client.get("/service-levels/?week=47")
    assert odd.status_code == 422 and "is not an ISO week" in odd.get_data(as_text=True)


def test_targets_form_keeps_a_refused_input_and_saves_a_good_one(app, ctx, orders) -> None:
    client = login(app, "supervisor")
    refused = client.post(
        "/service-levels/targets", data={"metric": "cycle_time", "target": "12", "amber": "9"}
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "must be at or above the target" in html
    row = html.split('id="target-cycle_time"', 1)[1].split("</tr>", 1)[0]
    assert 'value="12"' in row and 'value="9"' in row
    saved = client.post(
        "/service-levels/targets", data={"metric": "cycle_time", "target": "12", "amber": "20"}
    )
    assert saved.status_code == 302
    page = client.get("/service-levels/targets").get_data(as_text=True)
    assert "12.0 days" in page.split('id="target-cycle_time"', 1)[1].split("</tr>", 1)[0]
    denied = login(app, "specialist").post(
        "/service-levels/targets", data={"metric": "cycle_time", "target": "1", "amber": "2"}
    )
    assert denied.status_code in (302, 403)
    assert "12.0 days" in client.get("/service-levels/targets").get_data(as_text=True)


def test_download_button_and_improvement_log_from_a_pareto_bar(app, ctx, orders) -> None:
    from portal.extensions import db

    client = login(app, "specialist")
    week = orders["week"].label
    download = client.get(f"/service-levels/report?week={week}")
    assert download.status_code == 200
    assert load_workbook(io.BytesIO(download.data))["Summary"]["A1"].value == "Metric"
    form = client.get(
        "/improvementactionview/log?cause_source=backorder&cause_code=stock_shortage"
        "&problem=Backorder%3A+Stock+shortage"
    ).get_data(as_text=True)
    assert 'value="Backorder: Stock shortage"' in form
    body = {
        "problem": "Backorder: Stock shortage",
        "root_cause": "Reorder point too low",
        "action": "Raise it",
        "owner": "specialist",
        "due_date": "not a date",
        "metric": "backorder_rate",
        "cause_source": "backorder",
        "cause_code": "stock_shortage",
    }
    refused = client.post("/improvementactionview/log", data=body)
    assert refused.status_code == 422
    assert 'value="Reorder point too low"' in refused.get_data(as_text=True)
    logged = client.post(
        "/improvementactionview/log",
        data={**body, "due_date": (utcnow().date() + timedelta(days=7)).isoformat()},
    )
    assert logged.status_code == 302
    action = db.session.execute(select(ImprovementAction)).scalars().one()
    assert (action.cause_source, action.cause_code) == ("backorder", "stock_shortage")
    show = client.get(f"/improvementactionview/show/{action.id}").get_data(as_text=True)
    assert 'id="step-start"' in show and 'id="step-reopen"' not in show
    started = client.post(f"/improvementactionview/step/{action.id}/start")
    assert started.status_code == 302
    db.session.refresh(action)
    assert action.status == "in_progress"
    auditor = login(app, "auditor").get(f"/improvementactionview/show/{action.id}")
    assert 'id="step-' not in auditor.get_data(as_text=True)


def test_the_credits_tile_shows_money_as_every_page_does(app, ctx, orders) -> None:
    """The currency before the amount, with separators (``formatting.money``)."""
    html = login(app, "supervisor").get(f"/service-levels/?week={orders['week'].label}").text
    tile = html.split('id="kpi-credits"', 1)[1].split('id="kpi-', 1)[0]
    assert "Target USD 1,000.00" in tile
    assert re.search(r"USD \d{1,3}(,\d{3})*\.\d\d", re.sub(r"Target USD [\d,.]+", "", tile))
    assert not re.search(r"\d USD", tile)


def test_an_auditor_reads_the_page_and_downloads_its_workbook_but_changes_nothing(
    app, ctx, orders
) -> None:
    """The Auditors get the weekly workbook, so they read the page it is made from (its menu
    entry is theirs too); its targets and improvement-log buttons are not there for them."""
    client = login(app, "auditor")
    week = orders["week"].label
    page = client.get(f"/service-levels/?week={week}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="kpi-otif_order"' in html and 'id="download-workbook"' in html
    assert 'id="edit-targets"' not in html and "log-improvement" not in html
    download = client.get(f"/service-levels/report?week={week}")
    assert download.status_code == 200
    assert load_workbook(io.BytesIO(download.data))["Summary"]["A1"].value == "Metric"
    assert client.get("/service-levels/targets").status_code in (302, 403)
    assert client.get(f"/service-levels/orders?metric=otif_order&week={week}").status_code == 200
