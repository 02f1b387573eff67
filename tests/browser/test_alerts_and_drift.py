"""The alerts page (rules with their state, the history of firings) and the model page's drift
section, on data made to fire a rule and to drift."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import XSS, Tab, new_context, watched
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


def test_the_alerts_page_shows_a_fired_rule_and_its_history(browser: Browser, server: Server,
                                                            drifting: Workspace) -> None:
    with watched(new_context(browser), server.url) as tab:
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


def test_the_model_page_flags_the_drifted_confidence(browser: Browser, server: Server, drifting: Workspace) -> None:
    with watched(new_context(browser), server.url) as tab:
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
