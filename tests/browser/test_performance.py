"""The model page's measured accuracy: figures from attached labels, and a confusion cell that opens
exactly the inferences it counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import Tab, watched
from tests.conftest import Workspace, attach, ingest, open_workspace
from tests.server import Server

MODEL = "paint/3"


@pytest.fixture
def labelled(server: Server) -> Iterator[Workspace]:
    """20 colour verdicts, 15 right; wrong: 3 green ones called blue, 2 blue ones called red."""
    with open_workspace(server, "perf") as ws:
        now = time.time()
        verdicts = ["blue"] * 8 + ["red"] * 6 + ["green"] * 6
        truth = list(verdicts)
        truth[0:3] = ["green"] * 3  # predicted blue
        truth[8:10] = ["blue"] * 2  # predicted red
        ingest(ws, [{"model_id": MODEL, "inference_id": f"c{i:02d}", "timestamp": now - 600 - i * 60,
                     "result": {"top": v, "confidence": 0.9, "predictions": [{"class": v, "confidence": 0.9}]}}
                    for i, v in enumerate(verdicts)])
        by_value: dict[str, list[str]] = {}
        for i, expected in enumerate(truth):
            by_value.setdefault(expected, []).append(f"c{i:02d}")
        attach(ws, [{"inference_ids": ids, "field_name": "expected", "field_value": v} for v, ids in by_value.items()])
        reply = ws.client.put(f"{ws.api}/ground-truth", params={"model_id": MODEL}, json={"label_field": "expected"})
        assert reply.status_code == 200, reply.text
        yield ws


def test_accuracy_and_a_confusion_cell_that_opens_its_errors(profile: BrowserContext, server: Server,
                                                             labelled: Workspace) -> None:
    with watched(profile, server.url) as tab:
        tab.page.goto(f"{server.url}/signin?api_key={labelled.key}&next=/devices")
        tab.arrive("/devices")
        page = open_model(tab)
        tab.shot("model-performance")
        assert page.inner_text("#perf-accuracy") == "75.0%"
        assert page.inner_text("#perf-labelled") == "20"
        assert page.input_value("#perf-field") == "expected"
        blue = page.locator("#per-class tbody tr", has_text="blue").first
        assert blue.locator("td").nth(1).inner_text() == "7"  # expected blue: 5 right + 2 called red

        cell = page.locator('#confusion td[data-expected="green"][data-predicted="blue"] a')
        assert cell.inner_text() == "3"
        cell.click()
        table = tab.arrive("/inferences")
        rows = table.locator("#inference-table tbody tr")
        assert rows.count() == 3
        links = [rows.nth(i).locator("a").first.get_attribute("href") or "" for i in range(3)]
        assert sorted(link.rsplit("/", 1)[-1] for link in links) == ["c00", "c01", "c02"]
        assert "meta.expected=green" in table.url and "class=blue" in table.url


def test_a_model_without_ground_truth_says_how_to_get_it(tab: Tab) -> None:
    page = tab.open("/models/" + quote("sorter/2", safe=""))
    page.wait_for_selector("#performance[data-loaded=yes]", state="attached")
    assert page.is_visible("#perf-none") and not page.is_visible("#perf-body")


def open_model(tab: Tab) -> Page:
    page = tab.open("/models/" + quote(MODEL, safe=""))
    page.wait_for_selector("#performance[data-loaded=yes]", state="attached")
    return page
