"""The alerts page (rules with their state, the history of firings) and the model page's drift
section, on data made to fire a rule and to drift."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import XSS, Tab, watched
from tests.conftest import Workspace, ingest, open_workspace
from tests.server import Server

MODEL = "cans/4"
DAY = 86400.0


@pytest.fixture
def drifting(server: Server) -> Iterator[Workspace]:
    """Confidence near 0.85 the week before, near 0.35 this week; an alert on average confidence."""
    with open_workspace(server, "alerting") as ws:
        now = time.time()
        items = []
        for i in range(60):
            for when, base in ((now - 3600 - i * 600, 0.35), (now - 8 * DAY - i * 600, 0.85)):
                items.append({"model_id": MODEL, "timestamp": when, "result": {
                    "time": 0.02, "predictions": [{"x": 10.0, "y": 10.0, "width": 20.0, "height": 10.0,
                                                   "class": "dent", "confidence": base + (i % 10) / 100}]}})
        ingest(ws, items)
        rule = {"name": XSS, "metric": "avg_confidence", "condition": "below", "warning": 0.6, "critical": 0.5,
                "window_s": 7200, "model_id": MODEL}
        reply = ws.client.post(f"{ws.api}/alerts", json=rule)
        assert reply.status_code == 201, reply.text
        assert server.admin("POST", "/alerts/evaluate").status_code == 200
        yield ws


def signed_in(tab: Tab, server: Server, ws: Workspace) -> None:
    tab.page.goto(f"{server.url}/signin?api_key={ws.key}&next=/devices")
    tab.arrive("/devices")


def test_the_alerts_page_shows_a_fired_rule_and_its_history(profile: BrowserContext, server: Server,
                                                            drifting: Workspace) -> None:
    with watched(profile, server.url) as tab:
        signed_in(tab, server, drifting)
        page = tab.open("/alerts")
        tab.shot("alerts")
        row = page.locator("#rules-table tbody tr")
        assert row.count() == 1
        assert row.get_attribute("data-state") == "critical"
        assert row.locator("td").nth(1).inner_text() == XSS  # the name as typed, as text
        assert "model " + MODEL in row.inner_text()
        history = page.locator("#history-table tbody tr")
        assert history.count() == 1 and "ok → critical" in history.inner_text()


def test_the_model_page_flags_the_drifted_confidence(profile: BrowserContext, server: Server,
                                                      drifting: Workspace) -> None:
    with watched(profile, server.url) as tab:
        signed_in(tab, server, drifting)
        page = tab.open("/models/" + quote(MODEL, safe=""))
        page.wait_for_selector("#drift[data-loaded=yes]", state="attached")
        tab.shot("model-drift")
        assert page.get_attribute('#drift-table tr[data-feature="confidence"]', "data-drifted") == "yes"
        assert page.get_attribute('#drift-table tr[data-feature="class_mix"]', "data-drifted") == "no"
        assert "Drift:" in page.inner_text("#drift-verdict")
        assert page.locator("#chart-drift-confidence .main-svg").count() > 0


def test_a_workspace_without_rules_is_told_how_to_make_one(tab: Tab) -> None:
    page = tab.open("/alerts")
    assert page.is_visible("#no-rules") and not page.is_visible("#rules-card")
    assert "/alerts" in page.inner_text("#no-rules code")


def test_rules_are_created_and_deleted_from_the_dashboard(profile: BrowserContext, server: Server) -> None:
    with open_workspace(server, "rules") as ws, watched(profile, server.url) as tab:
        signed_in(tab, server, ws)
        page = tab.open("/alerts")
        page.click("#new-rule summary")
        page.fill("input[name=name]", "too slow")
        page.select_option("select[name=metric]", "p95_inference_time")
        page.select_option("select[name=condition]", "above")
        page.fill("input[name=warning]", "not a number")
        page.click(".rule-form button[type=submit]")
        page = tab.arrive("/alerts/new", loaded=False)
        assert "warning must be a number" in page.inner_text("#form-error")
        assert page.input_value("input[name=name]") == "too slow"  # what was typed is kept

        page.fill("input[name=warning]", "0.2")
        page.fill("input[name=critical]", "0.5")
        page.fill("input[name=model_id]", "cans/4")
        page.click(".rule-form button[type=submit]")
        page = tab.arrive("/alerts")
        rules = ws.client.get(f"{ws.api}/alerts").json()["alerts"]
        assert [(r["rule"]["name"], r["rule"]["metric"], r["rule"]["condition"], r["rule"]["warning"],
                 r["rule"]["critical"], r["rule"]["window_s"], r["rule"]["model_id"]) for r in rules] == [
            ("too slow", "p95_inference_time", "above", 0.2, 0.5, 1800, "cans/4")]
        assert page.locator("#rules-table tbody tr").count() == 1

        page.click("#rules-table tbody tr button:text-is('Delete')")
        page = tab.arrive("/alerts")
        assert ws.client.get(f"{ws.api}/alerts").json()["alerts"] == []
        assert page.is_visible("#no-rules")

        # A metadata field's average: without the field, the form says what is missing.
        page.click("#new-rule summary")
        page.fill("input[name=name]", "camera 3 blurry")
        page.select_option("select[name=metric]", "metadata_average")
        page.fill("input[name=warning]", "400")
        page.click(".rule-form button[type=submit]")
        page = tab.arrive("/alerts/new", loaded=False)
        assert "metadata_average needs `field`" in page.inner_text("#form-error")
        page.fill("input[name=field]", "image_sharpness")
        page.click(".rule-form button[type=submit]")
        page = tab.arrive("/alerts")
        [made] = ws.client.get(f"{ws.api}/alerts").json()["alerts"]
        assert (made["rule"]["metric"], made["rule"]["field"]) == ("metadata_average", "image_sharpness")
        assert page.locator("#rules-table tbody tr td").nth(2).inner_text() == "average of image_sharpness"


def test_a_rule_form_without_the_forms_token_is_refused(profile: BrowserContext, server: Server) -> None:
    """Signed in (the cookie goes along) but without the page's token, as a forged cross-site post."""
    with open_workspace(server, "forged") as ws, watched(profile, server.url) as tab:
        signed_in(tab, server, ws)
        form: dict[str, str | float | bool] = {"name": "x", "metric": "avg_confidence", "condition": "below",
                                               "warning": "0.5"}
        assert tab.page.request.post(f"{server.url}/alerts/new", form=form, max_redirects=0).status == 403
        assert tab.page.request.post(f"{server.url}/alerts/new", form={**form, "csrf": "forged"},
                                     max_redirects=0).status == 403
        assert ws.client.get(f"{ws.api}/alerts").json()["alerts"] == []
