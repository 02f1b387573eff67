"""The edge event store's `POST /v2/events` over HTTP, on the app in this process: an edge device's
event (snake_case, base64 images) stored through the same path as `POST /vision-events`, its key in
`X-API-Key` or Bearer, and every refusal a 400/401/403 whose `detail` (all that client reads) names
the field in the client's own words, storing nothing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace, list_all, open_workspace
from tests.e2e.test_keys import new_key
from tests.e2e.test_vision_event_bundle import jpeg, stored_nothing
from tests.e2e.test_vision_events import detections, ids, use_case
from tests.server import InProcess


def edge(uc: str, **extra: Any) -> dict[str, Any]:
    """The body the workflow block sends in event-store mode."""
    return {"inference_timestamp": datetime.now(UTC).isoformat(), "solution": uc, "event_schema": "quality_check",
            "event_data": {"result": "fail"},
            "images": [{"base64Image": base64.b64encode(jpeg()).decode(),
                        "inputBase64Image": base64.b64encode(jpeg((10, 10, 10))).decode(),
                        "label": "workflow", "objectDetections": detections(3)}],
            "custom_metadata": {"temperature": 160.5}, "displayImagePosition": 0, **extra}


def test_an_edge_event_is_written_with_its_images(app_server: InProcess, ws: Workspace) -> None:
    uc = use_case(ws)
    with app_server.client() as client:
        reply = client.post("/v2/events", json=edge(uc), headers={"X-API-Key": ws.key})
    assert reply.status_code == 201, reply.text
    event_id = reply.json()["id"]
    assert set(reply.json()) == {"id"}
    [event] = ws.client.post("/vision-events/query", json={"useCaseId": uc}).json()["events"]
    assert event["eventId"] == event_id and event["eventType"] == "quality_check"
    assert event["customMetadata"] == {"temperature": 160.5} and event["eventData"] == {"result": "fail"}
    [image] = event["images"]
    assert ws.client.get(f"{ws.api}/images/{image['inputSourceId']}").content == jpeg((10, 10, 10))
    [row] = list_all(ws)
    assert row["inference_id"] == event_id and row["n_predictions"] == 3
    # Bearer works too; each event gets an id of its own.
    reply = ws.client.post("/v2/events", json=edge(uc, images=[]))
    assert reply.status_code == 201 and reply.json()["id"] != event_id
    assert len(ids(ws, uc)) == 2


@pytest.mark.parametrize(("change", "named"), [
    ({"event_schema": "nope"}, "event_schema"),
    ({"solution": "no-such-use-case"}, "solution"),
    ({"inference_timestamp": "yesterday-ish"}, "inference_timestamp"),
    ({"custom_metadata": {"bad.key": 1}}, "custom_metadata"),
    ({"images": [{"base64Image": "%%% not base64"}]}, "images[0].base64Image"),
    ({"images": [{"base64Image": base64.b64encode(b"not an image").decode()}]}, "images[0].base64Image"),
    ({"images": [{"objectDetections": [{"class": "x"}]}]}, "images[0].objectDetections"),
    ({"solution": None}, "solution"),
])
def test_a_bad_edge_event_is_400_with_a_detail_naming_the_field(ws: Workspace, change: dict[str, Any],
                                                               named: str) -> None:
    uc = use_case(ws)
    reply = ws.client.post("/v2/events", json=edge(uc, **change))
    assert reply.status_code == 400, reply.text
    assert isinstance(reply.json()["detail"], str) and named in reply.json()["detail"], reply.text
    stored_nothing(ws, uc, jpeg(), jpeg((10, 10, 10)))


def test_the_edge_route_needs_a_key_with_the_ingest_scope(app_server: InProcess, ws: Workspace) -> None:
    uc = use_case(ws)
    reader, _ = new_key(ws, "reader", ["read"])
    with app_server.client() as client:
        for headers, status in (({}, 401), ({"X-API-Key": "wrong"}, 401), ({"X-API-Key": reader}, 403)):
            reply = client.post("/v2/events", json=edge(uc), headers=headers)
            assert reply.status_code == status
            assert isinstance(reply.json()["detail"], str) and reply.json()["detail"]
    stored_nothing(ws, uc, jpeg())


def test_the_writers_overload_is_the_529_that_client_knows_as_backpressure(tmp_path: Path) -> None:
    """A server whose writer has stopped taking work (as while it shuts down) refuses with the
    writer's overload: here 529 with its Retry-After and a `detail`, where other routes say 503."""
    app = InProcess(tmp_path / "data").start()
    try:
        with open_workspace(app) as ws:
            uc = use_case(ws)
            app.app.state.runtime.writer.stop()
            reply = ws.client.post("/v2/events", json=edge(uc, images=[]))
            assert reply.status_code == 529, reply.text
            assert reply.headers["retry-after"] == "5"
            assert reply.json() == {"error": "Overloaded", "detail": "Overloaded: the server is shutting down"}
            assert ws.client.post("/vision-events", json={
                "eventId": "e-1", "eventType": "custom", "useCaseId": uc,
                "timestamp": datetime.now(UTC).isoformat()}).status_code == 503
    finally:
        app.stop()
