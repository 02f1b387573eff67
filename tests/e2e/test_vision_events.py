"""Roboflow's Vision Events API over HTTP, on the app in this process: the SDK's bootstrap routes
beside the dashboard's pages, use cases, events written one by one, in batches (all or nothing)
and with uploaded images, the query with its filters and pages, delete, the schemas, and every
limit, each a 400 naming its field that stores nothing."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Workspace, list_all, total
from tests.e2e.test_keys import as_key, new_key
from tests.server import InProcess

NOW = datetime.now(UTC)


def use_case(ws: Workspace, name: str = "line qa") -> str:
    reply = ws.client.post("/vision-events/use-cases", json={"name": name})
    assert reply.status_code == 201, reply.text
    assert reply.json()["name"] == name.strip()
    found: str = reply.json()["id"]
    return found


def event(uc: str, event_id: str, minutes_ago: float = 1, **extra: Any) -> dict[str, Any]:
    return {"eventId": event_id, "eventType": "quality_check", "useCaseId": uc,
            "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "eventData": {"result": "pass"},
            **extra}


def detections(n: int = 1, confidence: float = 0.9) -> list[dict[str, Any]]:
    return [{"class": "scratch", "x": 50, "y": 40, "width": 10, "height": 8, "confidence": confidence}] * n


def query(ws: Workspace, uc: str, **body: Any) -> dict[str, Any]:
    reply = ws.client.post("/vision-events/query", json={"useCaseId": uc, **body})
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def ids(ws: Workspace, uc: str, **body: Any) -> list[str]:
    return [e["eventId"] for e in query(ws, uc, limit=1000, **body)["events"]]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()


# -- the SDK's bootstrap, beside the dashboard ------------------------------------------------------

def test_bootstrap_routes_answer_the_key_and_leave_the_pages_alone(web: Any, ws: Workspace,
                                                                    other: Workspace) -> None:
    assert web.post("/", params={"api_key": ws.key}).json() == {"workspace": ws.slug}
    assert web.post("/").status_code == 401
    assert web.post("/", params={"api_key": "nope"}).status_code == 401
    found = web.get(f"/{ws.slug}", params={"api_key": ws.key})
    assert found.status_code == 200
    assert found.json() == {"workspace": {"name": ws.slug, "url": ws.slug, "projects": [], "members": []}}
    assert web.get(f"/{ws.slug}").status_code == 401
    assert web.get(f"/{other.slug}", params={"api_key": ws.key}).status_code == 403
    # The dashboard's pages and the server's own routes are theirs, whatever the query string says.
    for path in ("/overview", "/alerts", "/inferences", "/devices", "/audit", "/signin"):
        page = web.get(path, params={"api_key": ws.key}, follow_redirects=False)
        assert "workspace" not in page.text[:40] and page.status_code in (200, 303, 307), path
    assert web.get("/healthz", params={"api_key": ws.key}).json().get("status") is not None
    assert web.get("/metrics", params={"api_key": ws.key}).headers["content-type"].startswith("text/plain")


# -- use cases ------------------------------------------------------------------------------------

def test_use_cases_are_created_renamed_archived_and_listed(ws: Workspace) -> None:
    first = use_case(ws, "  packing  ")
    second = use_case(ws, "welding")
    listed = ws.client.get("/vision-events/use-cases").json()
    assert [(u["id"], u["name"], u["status"]) for u in listed["useCases"]] == [
        (first, "packing", "active"), (second, "welding", "active")]
    assert listed["lookbackDays"] == 14 and listed["useCases"][0]["eventCount"] == 0
    duplicate = ws.client.post("/vision-events/use-cases", json={"name": "welding"})
    assert duplicate.status_code == 400 and duplicate.json()["error"] == "A solution with this name already exists"
    assert ws.client.put(f"/vision-events/use-cases/{first}", json={"name": "welding"}).status_code == 400
    renamed = ws.client.put(f"/vision-events/use-cases/{first}", json={"name": "boxing"})
    assert renamed.status_code == 200 and renamed.json() == {"id": first, "name": "boxing"}
    assert ws.client.post(f"/vision-events/use-cases/{first}/unarchive").json()["error"] == "Solution is not archived"
    assert ws.client.post(f"/vision-events/use-cases/{first}/archive").json() == {"success": True}
    assert [u["id"] for u in ws.client.get("/vision-events/use-cases").json()["useCases"]] == [second]
    inactive = ws.client.get("/vision-events/use-cases", params={"status": "inactive"}).json()["useCases"]
    assert [(u["id"], u["name"]) for u in inactive] == [(first, "boxing")]
    assert ws.client.post(f"/vision-events/use-cases/{first}/unarchive").status_code == 200
    for method, path in (("PUT", "/vision-events/use-cases/nope"), ("POST", "/vision-events/use-cases/nope/archive"),
                         ("GET", "/vision-events/custom-metadata-schema/nope")):
        missing = ws.client.request(method, path, json={"name": "x"} if method == "PUT" else None)
        assert missing.status_code == 404 and missing.json()["error"] == "Solution not found", path
    assert ws.client.get("/vision-events/use-cases", params={"status": "gone"}).status_code == 400


def test_use_cases_need_manage_and_writes_need_ingest(app_server: InProcess, ws: Workspace) -> None:
    uc = use_case(ws)
    reader, _ = new_key(ws, "viewer", ["read"])
    device, _ = new_key(ws, "camera", ["ingest"])
    with as_key(app_server, reader) as r, as_key(app_server, device) as d:
        assert d.post("/vision-events/use-cases", json={"name": "x"}).status_code == 403
        assert d.post("/vision-events", json=event(uc, "by-device")).status_code == 201
        assert d.post("/vision-events/query", json={"useCaseId": uc}).status_code == 403
        assert r.post("/vision-events", json=event(uc, "by-viewer")).status_code == 403
        assert [e["eventId"] for e in r.post("/vision-events/query", json={"useCaseId": uc}).json()["events"]] == [
            "by-device"]
    # The key may also come as ?api_key=, as Roboflow's bundle upload sends it.
    with app_server.client() as anonymous:
        assert anonymous.post("/vision-events/query", json={"useCaseId": uc}).status_code == 401
        assert anonymous.post("/vision-events/query", params={"api_key": ws.key},
                              json={"useCaseId": uc}).status_code == 200


# -- events ---------------------------------------------------------------------------------------

def test_an_event_with_an_uploaded_image_is_an_inference_with_metadata(ws: Workspace) -> None:
    uc = use_case(ws)
    upload = ws.client.post("/vision-events/upload", files={"file": ("n.jpg", png(), "application/octet-stream")},
                            data={"name": "n.jpg", "metadata": '{"camera": "c1"}'})
    assert upload.status_code == 201, upload.text
    source = upload.json()["sourceId"]
    assert upload.json()["success"] is True
    assert ws.client.get(upload.json()["url"]).headers["content-type"] == "image/png"
    sent = event(uc, "evt-1", deviceId="cam-7", streamId="s1", workflowId="qa-flow",
                 customMetadata={"temperature": 151.5, "operator": "ana", "ok": True},
                 eventData={"result": "fail", "externalId": "lot-9"},
                 images=[{"sourceId": source, "label": "workflow", "objectDetections": detections(2)},
                         {"inputSourceId": source, "classifications": [{"class": "ok", "confidence": 0.2},
                                                                       {"class": "bad", "confidence": 0.7}]}])
    created = ws.client.post("/vision-events", json=sent)
    assert created.status_code == 201 and created.json() == {"eventId": "evt-1", "created": True}
    (answer,) = query(ws, uc)["events"]
    assert {k: v for k, v in answer.items() if k != "receivedAt"} == sent
    shown = ws.client.get(f"{ws.api}/inferences/evt-1/image")  # the dashboard's inference page shows it
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    rows = {r["image_index"]: r for r in list_all(ws, **{"meta.ve.data.result": "fail"})}
    assert rows[0]["model_id"] == "qa-flow" and rows[0]["device_id"] == "cam-7"
    assert rows[0]["image"] == {"width": 320, "height": 240} and len(rows[0]["predictions"]) == 2
    assert [p["class"] for p in rows[1]["predictions"]] == ["bad"]
    assert rows[0]["metadata"]["temperature"] == 151.5 and rows[0]["metadata"]["ve.event_type"] == "quality_check"
    assert rows[0]["metadata"]["ok"] is True and rows[0]["metadata"]["ve.use_case"] == uc
    schema = ws.client.get(f"/vision-events/custom-metadata-schema/{uc}").json()
    assert schema == {"useCaseId": uc, "fields": {"ok": {"types": ["boolean"]}, "operator": {"types": ["string"]},
                                                 "temperature": {"types": ["number"]}}}


def test_a_resent_event_replaces_it_and_one_without_images_is_queryable(ws: Workspace) -> None:
    uc = use_case(ws)
    first = event(uc, "same", customMetadata={"v": 1, "gone": "x"}, images=[{"objectDetections": detections(3)}] * 2)
    assert ws.client.post("/vision-events", json=first).status_code == 201
    second = event(uc, "same", customMetadata={"v": 2}, images=[{"objectDetections": detections(1, 0.3)}])
    for _ in range(2):  # the second time a retry of the same body
        assert ws.client.post("/vision-events", json=second).status_code == 201
    (only,) = query(ws, uc)["events"]
    assert only["customMetadata"] == {"v": 2}
    (row,) = list_all(ws)  # its images' inferences and metadata are the new version's
    assert [p["confidence"] for p in row["predictions"]] == [0.3]
    assert "gone" not in row["metadata"] and row["metadata"]["v"] == 2
    assert ids(ws, uc, customMetadataFilters=[{"field": "v", "operator": "eq", "value": 2, "type": "number"}]) == [
        "same"]
    assert ws.client.get("/vision-events/use-cases").json()["useCases"][0]["eventCount"] == 1
    assert ws.client.get(f"{ws.api}/usage").json()["tables"]["events"]["rows"] == 1


def test_the_use_case_may_be_named_and_an_archived_one_refuses_events(ws: Workspace) -> None:
    uc = use_case(ws, "by-name")
    assert ws.client.post("/vision-events", json=event("by-name", "named")).status_code == 201
    assert ids(ws, uc) == ["named"] == ids(ws, "by-name")
    ws.client.post(f"/vision-events/use-cases/{uc}/archive")
    refused = ws.client.post("/vision-events", json=event(uc, "late"))
    assert refused.status_code == 400 and "useCaseId" in refused.json()["detail"]
    assert "archived" in refused.json()["detail"]
    assert ids(ws, uc) == ["named"]


def test_a_batch_is_all_or_nothing(ws: Workspace) -> None:
    uc = use_case(ws)
    good = [event(uc, f"b{i}", images=[{"objectDetections": detections()}]) for i in range(3)]
    bad = [good[0], {**good[1], "customMetadata": {"bad.key": 1}}, good[2]]
    refused = ws.client.post("/vision-events/batch", json={"events": bad})
    assert refused.status_code == 400 and "events[1]" in refused.json()["detail"]
    assert ids(ws, uc) == [] and total(ws) == 0
    created = ws.client.post("/vision-events/batch", json={"events": good})
    assert created.status_code == 201 and created.json() == {"created": 3, "eventIds": ["b0", "b1", "b2"]}
    assert sorted(ids(ws, uc)) == ["b0", "b1", "b2"] and total(ws) == 3
    too_many = ws.client.post("/vision-events/batch", json={"events": [event(uc, f"m{i}") for i in range(101)]})
    assert too_many.status_code == 400 and "events" in too_many.json()["detail"]
    assert ws.client.post("/vision-events/batch", json={"events": []}).status_code == 400


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


LIMITS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("no id", lambda b: b.pop("eventId"), "eventId"),
    ("empty id", _set("eventId", ""), "eventId"),
    ("long id", _set("eventId", "e" * 257), "eventId"),
    ("type", _set("eventType", "party"), "eventType"),
    ("no use case", lambda b: b.pop("useCaseId"), "useCaseId"),
    ("unknown use case", _set("useCaseId", "nope"), "useCaseId"),
    ("time", _set("timestamp", "yesterday"), "timestamp"),
    ("too old", _set("timestamp", (NOW - timedelta(days=366)).isoformat()), "timestamp"),
    ("future", _set("timestamp", (NOW + timedelta(days=2)).isoformat()), "timestamp"),
    ("101 keys", _set("customMetadata", {f"k{i}": i for i in range(101)}), "customMetadata"),
    ("key pattern", _set("customMetadata", {"a/b": 1}), "customMetadata"),
    ("long key", _set("customMetadata", {"k" * 101: 1}), "customMetadata"),
    ("long value", _set("customMetadata", {"k": "v" * 1001}), "customMetadata"),
    ("nested value", _set("customMetadata", {"k": {"a": 1}}), "customMetadata"),
    ("long device", _set("deviceId", "d" * 257), "deviceId"),
    ("long data", _set("eventData", {"note": "n" * 1001}), "eventData.note"),
    ("1001 boxes", _set("images", [{"objectDetections": detections(1001)}]), "objectDetections"),
    ("1001 classes", _set("images", [{"classifications": [{"class": "a", "confidence": 0.1}] * 1001}]),
     "classifications"),
    ("confidence", _set("images", [{"objectDetections": detections(1, 1.5)}]), "confidence"),
    ("polygon", _set("images", [{"instanceSegmentations": [{**detections()[0], "points": [[1, 2], [3, 4]]}]}]),
     "points"),
    ("17 images", _set("images", [{}] * 17), "images"),
    ("unknown source", _set("images", [{"sourceId": "a" * 64}]), "sourceId"),
    ("image metadata", _set("images", [{"metadata": {"x.y": 1}}]), "metadata"),
]


@pytest.mark.parametrize(("change", "field"), [(c, f) for _, c, f in LIMITS], ids=[n for n, _, _ in LIMITS])
def test_every_limit_is_a_400_naming_the_field_that_stores_nothing(ws: Workspace, change: Callable[..., None],
                                                                 field: str) -> None:
    uc = use_case(ws)
    body = event(uc, "bad", images=[{"objectDetections": detections()}])
    change(body)
    for path, payload in (("/vision-events", body), ("/vision-events/batch", {"events": [event(uc, "ok"), body]})):
        reply = ws.client.post(path, json=payload)
        assert reply.status_code == 400, (path, reply.text)
        answer = reply.json()
        assert set(answer) == {"error", "detail"} and field in answer["detail"], (path, answer)
    assert ids(ws, uc) == [] and total(ws) == 0


def test_uploads_refuse_what_is_no_image(ws: Workspace) -> None:
    not_image = ws.client.post("/vision-events/upload", files={"file": ("x.jpg", b"hello", "image/jpeg")})
    assert not_image.status_code == 400 and set(not_image.json()) == {"error", "detail"}
    plain = ws.client.post("/vision-events/upload", content=png(), headers={"content-type": "image/png"})
    assert plain.status_code == 400
    bad_meta = ws.client.post("/vision-events/upload", files={"file": ("n.png", png(), "image/png")},
                              data={"metadata": '{"a.b": 1}'})
    assert bad_meta.status_code == 400


# -- query, paging, delete ------------------------------------------------------------------------

@pytest.fixture
def stocked(ws: Workspace) -> tuple[Workspace, str]:
    uc = use_case(ws)
    batch = []
    for i in range(30):
        batch.append(event(uc, f"q{i:02d}", minutes_ago=30 - i, eventType=("quality_check", "safety_alert")[i % 2],
                           deviceId=("cam-1", "cam-2")[i % 3 == 0], eventData={"result": ("pass", "fail")[i % 4 == 0],
                                                                              "externalId": f"lot-{i % 5}"},
                           customMetadata={"temperature": 140 + i, "line": ("a", "b")[i % 2]},
                           images=[{}, {"objectDetections": detections(1, i / 10)}] if i < 10 else []))
    assert ws.client.post("/vision-events/batch", json={"events": batch}).status_code == 201
    return ws, uc


def test_the_query_pages_newest_first_as_the_sdk_pager_follows(stocked: tuple[Workspace, str]) -> None:
    ws, uc = stocked
    seen: list[str] = []
    body: dict[str, Any] = {"limit": 7}
    while True:
        page = query(ws, uc, **body)
        seen += [e["eventId"] for e in page["events"]]
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            break
        assert page["nextCursor"] and len(page["events"]) == 7
        body["cursor"] = page["nextCursor"]
    assert seen == [f"q{i:02d}" for i in reversed(range(30))]
    assert query(ws, uc, limit=30)["hasMore"] is False


def test_every_filter_selects_what_it_says(stocked: tuple[Workspace, str]) -> None:
    ws, uc = stocked
    everything = [f"q{i:02d}" for i in reversed(range(30))]

    def where(rule: Callable[[int], bool]) -> list[str]:
        return [e for e in everything if rule(int(e[1:]))]

    assert ids(ws, uc, eventType="safety_alert") == where(lambda i: i % 2 == 1)
    assert ids(ws, uc, eventTypes=["safety_alert", "quality_check"]) == everything
    start, end = (NOW - timedelta(minutes=20)).isoformat(), (NOW - timedelta(minutes=10)).isoformat()
    assert ids(ws, uc, startTime=start, endTime=end) == where(lambda i: 10 <= i <= 20)
    assert ids(ws, uc, deviceId={"operator": "eq", "value": "cam-2"}) == where(lambda i: i % 3 == 0)
    assert ids(ws, uc, deviceId={"operator": "neq", "value": "cam-2"}) == where(lambda i: i % 3 != 0)
    assert ids(ws, uc, externalId={"operator": "eq", "value": "lot-3"}) == where(lambda i: i % 5 == 3)
    assert ids(ws, uc, streamId={"operator": "eq", "value": "s"}) == []
    rng = [{"field": "temperature", "operator": "gt", "value": 150, "type": "number"},
           {"field": "temperature", "operator": "lte", "value": 160}]
    assert ids(ws, uc, customMetadataFilters=rng) == where(lambda i: 150 < 140 + i <= 160)
    assert ids(ws, uc, customMetadataFilters=[{"field": "line", "operator": "neq", "value": "a"}],
               eventType="safety_alert") == where(lambda i: i % 2 == 1)
    assert ids(ws, uc, eventFieldFilters=[{"column": "result", "operator": "eq", "value": "fail"}]) == where(
        lambda i: i % 4 == 0)
    # Events 0-9 have a scratch found at confidence i / 10 in their second image.
    assert ids(ws, uc, detection={"classes": ["scratch", "dent"]}) == where(lambda i: i < 10)
    assert ids(ws, uc, detection={"classes": ["scratch"], "minConfidence": 0.65}) == where(lambda i: 7 <= i < 10)
    assert ids(ws, uc, detection={"classes": ["dent"]}) == []


@pytest.mark.parametrize("body", [
    {"limit": 0}, {"limit": 1001}, {"eventType": "party"}, {"eventTypes": ["custom"] * 21}, {"colour": "red"},
    {"cursor": "not-a-cursor"}, {"startTime": "soon"}, {"deviceId": {"operator": "like", "value": "c"}},
    {"customMetadataFilters": [{"field": "t", "operator": "between", "value": 1}]},
    {"customMetadataFilters": [{"field": "t", "operator": "gt", "value": "hot"}]},
    {"eventFieldFilters": [{"column": "result", "operator": "eq"}]},
    {"detection": {"classes": []}}, {"detection": {"classes": ["a"], "minConfidence": 2}},
], ids=lambda b: next(iter(b)))
def test_a_bad_query_is_a_400(stocked: tuple[Workspace, str], body: dict[str, Any]) -> None:
    ws, uc = stocked
    reply = ws.client.post("/vision-events/query", json={"useCaseId": uc, **body})
    assert reply.status_code == 400 and set(reply.json()) == {"error", "detail"}, reply.text


def test_delete_removes_events_from_the_query(stocked: tuple[Workspace, str]) -> None:
    ws, uc = stocked
    reply = ws.client.post("/vision-events/delete", json={"useCaseId": uc, "eventIds": ["q01", "q02", "zz"]})
    assert reply.status_code == 200 and reply.json() == {"deleted": 2, "notFound": ["zz"]}
    assert "q01" not in ids(ws, uc) and len(ids(ws, uc)) == 28
    too_many = ws.client.post("/vision-events/delete", json={"useCaseId": uc, "eventIds": ["x"] * 1001})
    assert too_many.status_code == 400 and len(ids(ws, uc)) == 28
    unknown = ws.client.post("/vision-events/delete", json={"useCaseId": "nope", "eventIds": ["q03"]})
    assert unknown.status_code == 404


def test_a_workspace_sees_only_its_own_events(stocked: tuple[Workspace, str], other: Workspace) -> None:
    _, uc = stocked
    assert other.client.post("/vision-events/query", json={"useCaseId": uc}).status_code == 404
    assert other.client.get("/vision-events/use-cases").json()["useCases"] == []
    assert other.client.post("/vision-events", json=event(uc, "intruder")).status_code == 400
