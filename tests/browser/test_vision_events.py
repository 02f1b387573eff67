"""Vision Events in the dashboard: open a use case, filter its events by a numeric custom-metadata
range, open an event and see its boxes drawn, give feedback, and see the model's measured accuracy
change, in a real Chromium against the server process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext

from tests.browser.conftest import XSS, Tab, watched
from tests.browser.test_escaping import injected
from tests.conftest import Workspace, open_workspace
from tests.server import Server

MODEL = "line-camera"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 90, 90)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def line(server: Server) -> Iterator[tuple[Workspace, str]]:
    """A use case of 12 events, temperatures 140 to 151, two boxes each, two already reviewed."""
    with open_workspace(server, "vision") as ws:
        uc = ws.client.post("/vision-events/use-cases", json={"name": f"Line 3 {XSS}"}).json()["id"]
        source = ws.client.post("/vision-events/upload", files={"file": ("f.png", _png(), "image/png")}
                                ).json()["sourceId"]
        now = datetime.now(UTC)
        events = [{"eventId": f"ev-{i:02d}", "eventType": "quality_check", "useCaseId": uc, "workflowId": MODEL,
                   "timestamp": (now - timedelta(minutes=30 - i)).isoformat(), "deviceId": "cam-1",
                   "eventData": {"result": "pass"}, "customMetadata": {"temperature": 140 + i, "note": XSS},
                   "images": [{"sourceId": source, "objectDetections": [
                       {"class": "scratch", "x": 80, "y": 60, "width": 100, "height": 60, "confidence": 0.9},
                       {"class": "dent", "x": 240, "y": 170, "width": 80, "height": 80, "confidence": 0.6}]}]}
                  for i in range(12)]
        events += [{"eventId": f"fb-{i}", "eventType": "operator_feedback", "useCaseId": uc,
                    "timestamp": now.isoformat(), "eventData": {"relatedEventId": f"ev-0{i}", "feedback": verdict}}
                   for i, verdict in ((0, "correct"), (1, "incorrect"))]
        assert ws.client.post("/vision-events/batch", json={"events": events}).status_code == 201
        yield ws, uc


def test_filter_open_an_event_review_it_and_see_the_accuracy_change(profile: BrowserContext, server: Server,
                                                                     line: tuple[Workspace, str]) -> None:
    ws, uc = line
    with watched(profile, server.url) as tab:
        tab.page.goto(f"{server.url}/signin?api_key={ws.key}&next=/use-cases")
        page = tab.arrive("/use-cases")
        assert page.locator("#use-cases tbody tr").count() == 1
        page.get_by_role("link", name=f"Line 3 {XSS}").click()  # the name shown as text, not markup
        page = tab.arrive(f"/use-cases/{uc}")
        assert page.locator("#events tbody tr").count() == 14

        # A numeric range, term by term through the form: temperature ≥ 145 and < 149.
        for op, value in (("gte", "145"), ("lt", "149")):
            page.fill("#add-field", "temperature")
            page.select_option("#add-op", op)
            page.fill("#add-value", value)
            page.click("#apply")
            page = tab.arrive("temperature")
            page.wait_for_selector("body[data-loaded=yes]", state="attached")
        assert "meta.temperature%5Bgte%5D=145" in page.url and "meta.temperature%5Blt%5D=149" in page.url
        rows = page.locator("#events tbody tr")
        assert [rows.nth(i).get_attribute("data-event-id") for i in range(rows.count())] == [
            "ev-08", "ev-07", "ev-06", "ev-05"]
        assert all(c.get_attribute("data-drawn") == "2" for c in page.locator("canvas.annotated").all())
        tab.shot("vision-events")
        assert injected(tab) == 0 and XSS in page.inner_text("#events")

        page.locator('tr[data-event-id="ev-06"] a.open-event').click()
        page = tab.arrive("/events/ev-06")
        canvas = page.locator('figure[data-role="output"] canvas')
        assert canvas.get_attribute("data-drawn") == "2"
        # The boxes are drawn: the scratch box's top-left corner is painted in its class colour,
        # the image itself is grey there.
        red, green, blue, _ = page.evaluate(
            """() => { const c = document.querySelector('figure[data-role="output"] canvas');
                       const k = c.width / 320;
                       return Array.from(c.getContext('2d').getImageData(Math.round(30 * k) + 1,
                                         Math.round(60 * k), 1, 1).data); }""")
        assert (red, green, blue) != (90, 90, 90)
        assert page.inner_text("#latest-verdict") == "not reviewed"
        assert XSS in page.inner_text("#event-metadata")  # shown as text

        before = accuracy(tab, server)
        assert before == "50.0%"  # one right, one wrong of the two reviewed
        page = tab.open(f"/use-cases/{uc}/events/ev-06")
        page.fill("#feedback-comment", f"both defects real {XSS}")
        page.click("#verdict-correct")
        page = tab.arrive("/events/ev-06")
        assert page.inner_text("#latest-verdict") == "correct"
        assert XSS in page.inner_text("#feedback-history")
        tab.shot("vision-event")
        assert injected(tab) == 0
        assert accuracy(tab, server) == "66.7%"  # two right of three


def accuracy(tab: Tab, server: Server) -> str:
    """The model's measured accuracy as its page shows it (no ground-truth setting: the verdicts)."""
    page = tab.open("/models/" + quote(MODEL, safe=""))
    page.wait_for_selector("#performance[data-loaded=yes]", state="attached")
    return page.inner_text("#perf-accuracy")
