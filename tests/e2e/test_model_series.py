"""The per-model series as the app serves them (in-process): counted once per inference the
store takes (a re-sent batch adds nothing), and a workspace with nothing yet."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Workspace, ingest, item


def series(ws: Workspace) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = ws.client.get(f"{ws.api}/metrics")
    assert reply.status_code == 200, reply.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def test_a_resent_batch_is_not_counted_again(ws: Workspace) -> None:
    batch = [item(f"i-{n}", "m/1", device_id="cam", time_s=0.05,
                  predictions=[{"x": 1, "y": 1, "width": 2, "height": 2, "class": "a", "confidence": 0.7}])
             for n in range(5)]
    ingest(ws, batch)
    first = series(ws)
    assert first[("inferwatch_model_inferences_total", (("device_id", "cam"), ("model_id", "m/1")))] == 5
    labels = (("class", "a"), ("device_id", "cam"), ("model_id", "m/1"))
    assert first[("inferwatch_model_predictions_total", labels)] == 5
    assert first[("inferwatch_model_inference_seconds_count", (("model_id", "m/1"),))] == 5
    ingest(ws, batch)  # a client's retry: the store skips every item, and so do the series
    assert series(ws) == first


def test_an_empty_workspace_serves_empty_families(ws: Workspace) -> None:
    reply = ws.client.get(f"{ws.api}/metrics")
    assert reply.status_code == 200
    assert "# TYPE inferwatch_model_inferences_total counter" in reply.text
    assert "inferwatch_model_inferences_total{" not in reply.text


def test_vision_events_images_are_counted_once(ws: Workspace) -> None:
    use_case = ws.client.post("/vision-events/use-cases", json={"name": "qa"}).json()["id"]
    event = {"eventId": "ve-1", "eventType": "custom", "useCaseId": use_case, "workflowId": "qa-flow",
             "timestamp": datetime.now(UTC).isoformat(), "deviceId": "cam",
             "images": [{"objectDetections": [{"class": "a", "x": 1, "y": 1, "width": 2, "height": 2,
                                               "confidence": 0.7}]}] * 2}
    for _ in range(2):  # the second time a retry, counted by nothing
        assert ws.client.post("/vision-events", json=event).status_code == 201
        assert series(ws)[("inferwatch_model_inferences_total", (("device_id", "cam"), ("model_id", "qa-flow")))] == 2
