"""The dashboard's Vision Events pages over HTTP, signed in as a browser is: the use cases (archived
ones behind a toggle), a use case's events with the query's filters in the URL and pages, one
event with its feedback history, and the feedback form (CSRF, and `ingest`: a viewer gets 403).
Everything a user sent comes back escaped."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import Workspace
from tests.e2e.test_keys import _csrf, _sign_in, new_key
from tests.e2e.test_vision_events import detections, event, png, use_case
from tests.server import InProcess

XSS = "<img src=x onerror=alert(1)>"


def _rows(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr data-event-id="([^"]+)"', page.text)


def _stock(ws: Workspace) -> tuple[str, str]:
    uc = use_case(ws, f"line {XSS}")
    old = use_case(ws, "retired line")
    assert ws.client.post(f"/vision-events/use-cases/{old}/archive").status_code == 200
    source = ws.client.post("/vision-events/upload", files={"file": ("a.png", png(), "image/png")}).json()["sourceId"]
    batch: list[dict[str, Any]] = [
        event(uc, f"e{i:02d}", minutes_ago=60 - i, deviceId=("cam-1", "cam-2")[i % 2],
              eventType=("quality_check", "safety_alert")[i % 3 == 0],
              customMetadata={"temperature": 140 + i, "note": XSS},
              eventData={"result": ("pass", "fail")[i % 4 == 0]},
              images=[{"sourceId": source, "objectDetections": detections(1 + i % 3)}])
        for i in range(30)]
    assert ws.client.post("/vision-events/batch", json={"events": batch}).status_code == 201
    return uc, old


def test_use_cases_events_and_an_event_page(app_server: InProcess, ws: Workspace) -> None:
    uc, old = _stock(ws)
    with _sign_in(app_server, ws.key) as browser:
        listed = browser.get("/use-cases")
        assert listed.status_code == 200
        assert XSS not in listed.text and "line &lt;img src=x onerror=alert(1)&gt;" in listed.text
        assert f'data-use-case="{uc}"' in listed.text and f'data-use-case="{old}"' not in listed.text
        assert "quality_check" in listed.text and "safety_alert" in listed.text and ">30<" in listed.text
        # The SDK's `GET /{workspace}?api_key=` never shadows the page.
        assert "use-cases" in browser.get("/use-cases", params={"api_key": ws.key}).text
        everything = browser.get("/use-cases", params={"archived": "1"})
        assert f'data-use-case="{old}"' in everything.text and "archived" in everything.text

        first = browser.get(f"/use-cases/{uc}")
        assert first.status_code == 200 and XSS not in first.text
        assert _rows(first) == [f"e{i:02d}" for i in range(29, 4, -1)]  # newest first, 25 a page
        older = re.search(r'href="([^"]+)" id="older"', first.text)
        assert older is not None
        assert _rows(browser.get(older.group(1).replace("&amp;", "&"))) == [f"e{i:02d}" for i in range(4, -1, -1)]
        # Every filter in the URL: a numeric range on custom metadata, event data, type, device, verdict.
        ranged = browser.get(f"/use-cases/{uc}", params=[("meta.temperature[gte]", "150"),
                                                         ("meta.temperature[lt]", "160")])
        assert _rows(ranged) == [f"e{i:02d}" for i in range(19, 9, -1)]
        assert "meta.temperature ≥ 150" in ranged.text
        assert _rows(browser.get(f"/use-cases/{uc}", params={"data.result": "fail", "type": "safety_alert"})) == [
            f"e{i:02d}" for i in range(29, -1, -1) if i % 4 == 0 and i % 3 == 0]
        assert _rows(browser.get(f"/use-cases/{uc}", params={"deviceId[neq]": "cam-1", "from": "2000-01-01"})) == [
            f"e{i:02d}" for i in range(29, -1, -1) if i % 2]
        # The form's "add a term" inputs become one term of the URL.
        added = browser.get(f"/use-cases/{uc}", params={"add_kind": "meta", "add_field": "temperature",
                                                        "add_op": "gt", "add_value": "167"})
        assert added.status_code == 303 and "meta.temperature%5Bgt%5D=167" in added.headers["location"]
        bad = browser.get(f"/use-cases/{uc}", params={"feedback": "maybe"})
        assert bad.status_code == 400 and "feedback" in bad.text
        assert browser.get("/use-cases/nope").status_code == 404

        page = browser.get(f"/use-cases/{uc}/events/e03")
        assert page.status_code == 200 and XSS not in page.text
        assert 'data-annotations="{&#34;image&#34;' in page.text and "Nobody has reviewed" in page.text
        assert browser.get(f"/use-cases/{uc}/events/nope").status_code == 404
        token = _csrf(page)
        for verdict, comment in (("incorrect", XSS), ("correct", "fine after all")):
            given = browser.post(f"/use-cases/{uc}/feedback", data={"csrf": token, "event_id": "e03",
                                                                    "verdict": verdict, "comment": comment})
            assert given.status_code == 303 and given.headers["location"] == f"/use-cases/{uc}/events/e03"
        page = browser.get(f"/use-cases/{uc}/events/e03")
        history = page.text[page.text.index('id="feedback-history"'):]
        assert history.index("incorrect") < history.index("fine after all")
        assert "&lt;img src=x" in history and XSS not in page.text
        assert 'id="latest-verdict" class="verdict correct"' in page.text
        assert _rows(browser.get(f"/use-cases/{uc}", params={"feedback": "correct"})) == ["e03"]
        review = _rows(browser.get(f"/use-cases/{uc}", params={"type": "operator_feedback"}))[0]
        assert f'id="reviewed" href="/use-cases/{uc}/events/e03"' in browser.get(
            f"/use-cases/{uc}/events/{review}").text
        refused = browser.post(f"/use-cases/{uc}/feedback", data={"csrf": token, "event_id": "e03", "verdict": "meh"})
        assert refused.status_code == 400 and "eventData.feedback" in refused.text
        stale = browser.post(f"/use-cases/{uc}/feedback", data={"csrf": "x" * 30, "event_id": "e03",
                                                                 "verdict": "correct"})
        assert stale.status_code == 403
    feedback = [e for e in ws.client.post("/vision-events/query", json={
        "useCaseId": uc, "eventType": "operator_feedback"}).json()["events"]]
    # Newest first; the dashboard names the session's key as the reviewer.
    assert [f["eventData"]["feedback"] for f in feedback] == ["correct", "incorrect"]
    assert all(f["eventData"]["reviewer"] and f["eventData"]["relatedEventId"] == "e03" for f in feedback)


def test_a_viewer_reads_the_pages_and_cannot_give_feedback(app_server: InProcess, ws: Workspace) -> None:
    uc, _ = _stock(ws)
    key, _ = new_key(ws, "wall-screen", ["read"])
    with _sign_in(app_server, key) as viewer:
        page = viewer.get(f"/use-cases/{uc}/events/e01")
        assert page.status_code == 200 and 'id="feedback-form"' not in page.text
        reply = viewer.post(f"/use-cases/{uc}/feedback", data={"csrf": _csrf(page), "event_id": "e01",
                                                               "verdict": "correct"})
        assert reply.status_code == 403 and "`ingest`" in reply.json()["detail"]
    assert ws.client.post("/vision-events/query", json={"useCaseId": uc, "eventType": "operator_feedback"}
                          ).json()["events"] == []
