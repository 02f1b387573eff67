"""Ingestion warnings over HTTP, on the app in this process: an event with a part that is not used
as sent (a misspelt field, event data of another shape than its type's, a display position naming
no image) is stored, its answer and its query echo say why, `"warnings"` filters on them, and sending
it again replaces them, and the dashboard lists them escaped. The limits stay 400s."""

from __future__ import annotations

import io
import json
import re
import tarfile

from tests.conftest import Workspace, list_all
from tests.e2e.test_keys import _sign_in
from tests.e2e.test_vision_events import detections, event, ids, png, query, use_case
from tests.server import InProcess

XSS = "<img src=x onerror=alert(1)>"


def _warnings(ws: Workspace, uc: str, event_id: str) -> list[str] | None:
    found = [e for e in query(ws, uc, limit=1000)["events"] if e["eventId"] == event_id]
    assert len(found) == 1
    warnings: list[str] | None = found[0].get("ingestionWarnings")
    return warnings


def test_a_misspelt_field_is_stored_with_a_warning_and_the_filter_finds_it(ws: Workspace) -> None:
    uc = use_case(ws)
    clean = ws.client.post("/vision-events", json=event(uc, "clean", customMetadata={"line": "a"}))
    assert clean.status_code == 201 and clean.json() == {"eventId": "clean", "created": True}
    typo = ws.client.post("/vision-events", json=event(uc, "typo", customMetdata={"line": "a"}))
    assert typo.status_code == 201, typo.text
    assert typo.json() == {"eventId": "typo", "created": True,
                           "ingestionWarnings": ["customMetdata: unknown field, ignored (kept in the body)"]}
    # Stored as sent: the misspelt field is in the echo, and the warning beside it.
    echoed = next(e for e in query(ws, uc)["events"] if e["eventId"] == "typo")
    assert echoed["customMetdata"] == {"line": "a"}
    assert echoed["ingestionWarnings"] == ["customMetdata: unknown field, ignored (kept in the body)"]
    assert "ingestionWarnings" not in next(e for e in query(ws, uc)["events"] if e["eventId"] == "clean")
    assert ids(ws, uc, warnings=True) == ["typo"]
    assert ids(ws, uc, warnings=False) == ["clean"]
    assert sorted(ids(ws, uc)) == ["clean", "typo"]
    # A bad value of the filter is a 400, as every filter's.
    refused = ws.client.post("/vision-events/query", json={"useCaseId": uc, "warnings": "yes"})
    assert refused.status_code == 400 and "warnings" in refused.json()["detail"]


def test_event_data_that_misfits_its_type_and_repairs_are_warned(ws: Workspace) -> None:
    uc = use_case(ws)
    source = ws.client.post("/vision-events/upload", files={"file": ("a.png", png(), "image/png")}).json()["sourceId"]
    odd = event(uc, "odd", eventData={"result": "maybe", "operator": "kim"}, displayImagePosition=3,
                images=[{"sourceId": source, "lable": "x",
                         "objectDetections": [{**detections()[0], "clas": "dent"}],
                         "classifications": [{"class": "ok", "confidence": 0.8}]}])
    count = {**event(uc, "count", eventType="inventory_count", eventData={"itemCount": "twelve"})}
    alert = {**event(uc, "alert", eventType="safety_alert", eventData={"severity": "critical"})}
    reply = ws.client.post("/vision-events/batch", json={"events": [odd, count, alert, event(uc, "fine")]})
    assert reply.status_code == 201, reply.text
    warned = reply.json()["ingestionWarnings"]
    assert set(warned) == {"odd", "count", "alert"} and reply.json()["eventIds"] == ["odd", "count", "alert", "fine"]
    assert warned["odd"] == [
        "images[0].lable: unknown field, ignored (kept in the body)",
        "images[0].objectDetections[0].clas: unknown field, ignored (kept in the body)",
        'eventData.result: expected "pass" or "fail", kept as sent',
        "eventData.operator: not a field of quality_check events (result, externalId, confidence), kept as sent",
        "displayImagePosition: 3 names no image (the event has 1); the first is shown",
        "images[0].classifications: not predictions of the image's inference, which are its 1 boxes"
        " (kept in the body)"]
    assert warned["count"] == ["eventData.itemCount: expected an integer, kept as sent"]
    assert warned["alert"] == ['eventData.severity: expected "low", "medium" or "high", kept as sent']
    # Stored as sent: the misfit value is filterable as it came, and the event shows its first image.
    assert ids(ws, uc, eventFieldFilters=[{"column": "result", "operator": "eq", "value": "maybe"}]) == ["odd"]
    assert ids(ws, uc, warnings=False) == ["fine"]
    (row,) = list_all(ws, **{"meta.ve.data.result": "maybe"})
    assert [p["class"] for p in row["predictions"]] == ["scratch"]  # the boxes, not the classification
    assert ws.client.get(f"{ws.api}/inferences/odd/image").status_code == 200  # the first image, shown
    assert _warnings(ws, uc, "fine") is None


def test_a_resent_event_replaces_its_warnings(ws: Workspace) -> None:
    uc = use_case(ws)
    assert ws.client.post("/vision-events", json=event(uc, "e1", eventData={"result": "FAIL"})).status_code == 201
    assert _warnings(ws, uc, "e1") == ['eventData.result: expected "pass" or "fail", kept as sent']
    assert "ingestionWarnings" not in ws.client.post("/vision-events", json=event(uc, "e1")).json()
    assert _warnings(ws, uc, "e1") is None and ids(ws, uc, warnings=True) == []
    again = ws.client.post("/vision-events", json=event(uc, "e1", deviceID="cam"))
    assert again.json()["ingestionWarnings"] == ["deviceID: unknown field, ignored (kept in the body)"]
    assert _warnings(ws, uc, "e1") == ["deviceID: unknown field, ignored (kept in the body)"]
    # A batch naming an id twice stores its last version, and says so.
    twice = ws.client.post("/vision-events/batch", json={"events": [event(uc, "e2"), event(uc, "e2")]})
    assert twice.json()["ingestionWarnings"] == {"e2": ["eventId: sent 2 times in this batch; this, the last,"
                                                        " is stored"]}
    assert ids(ws, uc, warnings=True) == ["e2", "e1"]  # the same time: by id, descending


def test_the_limits_stay_400s_whatever_else_is_misspelt(ws: Workspace) -> None:
    uc = use_case(ws)
    bad = event(uc, "bad", customMetdata={}, images=[{"objectDetections": detections(confidence=2)}])
    reply = ws.client.post("/vision-events", json=bad)
    assert reply.status_code == 400 and "images[0].objectDetections[0].confidence" in reply.json()["detail"]
    long = event(uc, "long", extra="x", customMetadata={"k": "v" * 1001})
    assert ws.client.post("/vision-events", json=long).status_code == 400
    assert ids(ws, uc) == []


def test_bundle_and_edge_events_say_what_was_left_out(ws: Workspace) -> None:
    uc = use_case(ws)
    payload = {**event(uc, "b1"), "bundleFormatVersion": 1, "images": [{"file": "images/a.png"}]}
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, body in (("payload.json", json.dumps(payload).encode()), ("images/a.png", png()),
                           ("images/b.png", png()), ("notes.txt", b"hello")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    reply = ws.client.post("/vision-events/bundle", content=data.getvalue())
    assert reply.status_code == 201, reply.text
    assert reply.json()["ingestionWarnings"] == [
        'bundle: member "notes.txt" is not read (only payload.json and images/ are)',
        'bundle: member "images/b.png" is named by no image of the payload; not kept']
    assert _warnings(ws, uc, "b1") == reply.json()["ingestionWarnings"]
    edge = {"inference_timestamp": event(uc, "x")["timestamp"], "solution": uc, "event_schema": "quality_check",
            "event_data": {"result": "ok"}, "camera": "north", "images": []}
    sent = ws.client.post("/v2/events", json=edge, headers={"X-API-Key": ws.key})
    assert sent.status_code == 201, sent.text
    assert sent.json()["ingestionWarnings"] == ["camera: unknown field, ignored",
                                                'event_data.result: expected "pass" or "fail", kept as sent']


def test_the_events_page_filters_on_warnings_and_the_event_lists_them_escaped(app_server: InProcess,
                                                                              ws: Workspace) -> None:
    uc = use_case(ws)
    batch = [event(uc, "plain", minutes_ago=2), event(uc, "warned", minutes_ago=1, **{XSS: 1})]
    assert ws.client.post("/vision-events/batch", json={"events": batch}).status_code == 201
    with _sign_in(app_server, ws.key) as browser:
        page = browser.get(f"/use-cases/{uc}")
        assert re.findall(r'<tr data-event-id="([^"]+)"', page.text) == ["warned", "plain"]
        only = browser.get(f"/use-cases/{uc}", params={"warnings": "yes"})
        assert re.findall(r'<tr data-event-id="([^"]+)"', only.text) == ["warned"]
        assert 'value="yes" selected' in only.text and "warnings = yes" in only.text  # the chip
        without = browser.get(f"/use-cases/{uc}", params={"warnings": "no"})
        assert re.findall(r'<tr data-event-id="([^"]+)"', without.text) == ["plain"]
        assert browser.get(f"/use-cases/{uc}", params={"warnings": "maybe"}).status_code == 400
        shown = browser.get(f"/use-cases/{uc}/events/warned")
        assert shown.status_code == 200 and XSS not in shown.text
        listed = re.search(r'<ul id="ingestion-warnings">(.*?)</ul>', shown.text, re.S)
        assert listed is not None
        assert listed.group(1) == ('<li>[&#34;&lt;img src=x onerror=alert(1)&gt;&#34;]: unknown field, ignored'
                                   ' (kept in the body)</li>')
        assert 'id="ingestion-warnings"' not in browser.get(f"/use-cases/{uc}/events/plain").text
