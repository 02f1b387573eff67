"""The `inference` server's reports (`POST /inference-stats`, `POST /{workspace}/inference-stats`),
the documented stats answer (`GET /{workspace}/inference-stats`) and the device list, with the
captured fixtures."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from inferwatch.store import sketch
from tests.conftest import EVER, Workspace, box, ingest, item, list_all, load, total
from tests.server import InProcess


def _report(name: str, key: str | None) -> dict[str, Any]:
    body: dict[str, Any] = _swap_key(load(name), key)
    return body


def _swap_key(value: Any, key: str | None) -> Any:
    if isinstance(value, dict):
        return {k: (key if v == "FIXTURE_KEY" else _swap_key(v, key)) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap_key(v, key) for v in value]
    return value


def _anonymous(server: InProcess) -> httpx.Client:
    """A client without an Authorization header: the key travels in the body, as the server sends it."""
    return server.client(timeout=30)


def _pingback(server: InProcess, body: Any) -> httpx.Response:
    with _anonymous(server) as client:
        return client.post("/inference-stats", json=body)


def _expected(body: dict[str, Any]) -> tuple[int, Counter[str]]:
    """Inferences and predicted classes a report holds: one inference per response element (or
    one for an empty response); detections all count, a classifier's verdict is its top class."""
    n = 0
    classes: Counter[str] = Counter()
    for result in body["inference_results"]:
        inference = result["inference"]
        responses = inference["response"]
        if isinstance(responses, dict):
            responses = [responses]
        n += max(1, len(responses))
        for response in responses:
            preds = response["predictions"]
            if inference["request"].get("model_type") == "classification":
                if isinstance(preds, dict):
                    classes.update(response["predicted_classes"])
                elif response.get("top"):
                    classes[response["top"]] += 1
                else:
                    classes[max(preds, key=lambda p: p["confidence"])["class"]] += 1
            else:
                classes.update(p["class"] for p in preds)
    return n, classes


def _stored_classes(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(p["class"] for row in rows for p in row["predictions"])


# -- POST /inference-stats ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pingback-tiny", "pingback-full"])
def test_report_stores_every_inference_and_prediction(app_server: InProcess, ws: Workspace, name: str) -> None:
    body = _report(name, ws.key)
    reply = _pingback(app_server, body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "ok"
    n, classes = _expected(body)
    rows = list_all(ws)
    assert len(rows) == n
    assert _stored_classes(rows) == classes
    assert {r["source"] for r in rows} == {"pingback"}
    assert {r["device_id"] for r in rows} == {"edge-box-7"}
    assert all(r["tags"] == ["lineA", "shift2"] for r in rows)
    assert all(r["inference_server_version"] == "1.8.3" and r["inference_server_id"] == "fx0001" for r in rows)
    # request_time is the inference's time, not the report's start-up timestamp
    times = sorted(r["request_time"] for r in body["inference_results"])
    stored = sorted(datetime.fromisoformat(r["timestamp"]).timestamp() for r in rows)
    assert stored[0] == pytest.approx(times[0], abs=1e-5)
    assert stored[-1] == pytest.approx(times[-1], abs=1e-5)
    by_model = {r["model_id"]: r for r in rows}
    assert by_model["paint-color/3"]["task"] == "classification"
    assert by_model["paint-color/3"]["confidence_threshold"] == 0.3
    assert by_model["pcb-defects/7"]["task"] == "object-detection"
    assert "model_type" not in by_model["pcb-defects/7"]  # detection requests leave it null


def test_full_form_keeps_geometry(app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-full", ws.key)
    assert _pingback(app_server, body).status_code == 200
    rows = list_all(ws, model_id="pcb-defects/7")
    boxes = [p for r in rows for p in r["predictions"]]
    assert boxes and all({"x", "y", "width", "height", "class_id", "detection_id"} <= p.keys() for p in boxes)
    (pose,) = list_all(ws, model_id="worker-pose/4")
    assert pose["task"] == "keypoint-detection"
    assert all("keypoints" in p for p in pose["predictions"])
    (seg,) = list_all(ws, model_id="weld-seg/1")
    assert seg["task"] == "instance-segmentation"


def test_batch_gives_one_inference_per_image_and_empty_response_one_without_predictions(
        app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    assert _pingback(app_server, body).status_code == 200
    batch = next(r["inference"] for r in body["inference_results"] if len(r["inference"]["response"]) == 2)
    reply = ws.client.get(f"{ws.api}/inferences/{batch['inference_id']}")
    assert reply.json()["image_count"] == 2
    empty = next(r["inference"] for r in body["inference_results"] if r["inference"]["response"] == [])
    (row,) = [r for r in list_all(ws) if r["inference_id"] == empty["inference_id"]]
    assert row["predictions"] == [] and row["n_predictions"] == 0


def test_resent_report_counts_once(app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    n, _ = _expected(body)
    for _ in range(3):
        assert _pingback(app_server, body).status_code == 200
    assert total(ws) == n


def test_null_top_key_uses_each_results_key(app_server: InProcess, ws: Workspace, other: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    body["api_key"] = None
    results = body["inference_results"]
    for result in results[:2]:
        result["inference"]["request"]["api_key"] = other.key
    reply = _pingback(app_server, body)
    assert reply.status_code == 200, reply.text
    mine = sum(max(1, len(r["inference"]["response"])) for r in results[2:])
    theirs = sum(max(1, len(r["inference"]["response"])) for r in results[:2])
    assert total(ws) == mine
    assert total(other) == theirs


def test_unknown_result_key_rejects_the_whole_report(app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    body["api_key"] = None
    body["inference_results"][3]["inference"]["request"]["api_key"] = "not-a-known-key"
    reply = _pingback(app_server, body)
    assert reply.status_code == 401
    assert total(ws) == 0
    assert ws.client.get(f"{ws.api}/devices").json()["devices"] == []


def test_wrong_top_key_is_401(app_server: InProcess, ws: Workspace) -> None:
    reply = _pingback(app_server, _report("pingback-tiny", "wrong-key-123"))
    assert reply.status_code == 401
    body = _report("pingback-tiny", None)
    for result in body["inference_results"]:
        result["inference"]["request"].pop("api_key")
    assert _pingback(app_server, body).status_code == 401


@pytest.mark.parametrize("change", [
    lambda b: b["inference_results"][0]["inference"]["response"][0]["predictions"][0].update(confidence=1.5),
    lambda b: b["inference_results"][0]["inference"]["request"].pop("model_id"),
    lambda b: b["inference_results"][0].update(request_time="yesterday"),
    lambda b: b["inference_results"][0].update(request_time=1.0),
    lambda b: b.update(inference_results={"not": "a list"}),
    lambda b: b["inference_results"][0]["inference"].pop("request"),
])
def test_malformed_report_is_400_and_writes_nothing(app_server: InProcess, ws: Workspace, change: Any) -> None:
    body = _report("pingback-tiny", ws.key)
    change(body)
    reply = _pingback(app_server, body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "Invalid request"
    assert total(ws) == 0
    assert ws.client.get(f"{ws.api}/devices").json()["devices"] == []


def test_not_json_is_400(app_server: InProcess) -> None:
    with _anonymous(app_server) as client:
        reply = client.post("/inference-stats", content=b"{nope", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "Invalid request"


def test_unknown_fields_and_confidence_words_are_accepted(app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    body["something_new"] = {"a": 1}
    body["inference_results"][0]["inference"]["request"]["confidence"] = "best"
    body["inference_results"][1]["inference"]["request"]["confidence"] = "default"
    body["inference_results"][0]["inference"]["new_field"] = [1, 2]
    assert _pingback(app_server, body).status_code == 200
    thresholds = {r["confidence_threshold"] for r in list_all(ws) if r["model_id"] == "pcb-defects/7"}
    assert {"best", "default"} <= thresholds


# -- devices --------------------------------------------------------------------------------------

def test_report_makes_a_device_with_its_facts(app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    assert _pingback(app_server, body).status_code == 200
    reply = ws.client.get(f"{ws.api}/devices", params=EVER)
    assert reply.status_code == 200, reply.text
    (device,) = reply.json()["devices"]
    assert device["device_id"] == "edge-box-7"
    assert device["server_version"] == "1.8.3"
    assert device["server_id"] == "fx0001"
    assert device["tags"] == ["lineA", "shift2"]
    assert device["platform"] == "Linux"
    assert device["inferences"] == _expected(body)[0]
    assert device["online"] is True


def test_later_report_wins_for_facts_and_silence_makes_offline(app_server: InProcess, ws: Workspace) -> None:
    first = _report("pingback-tiny", ws.key)
    assert _pingback(app_server, first).status_code == 200
    later = copy.deepcopy(first)
    later["inference_server_version"] = "1.9.0"
    later["tags"] = ["lineB"]
    later["inference_results"] = []
    assert _pingback(app_server, later).status_code == 200
    (device,) = ws.client.get(f"{ws.api}/devices", params=EVER).json()["devices"]
    assert device["server_version"] == "1.9.0" and device["tags"] == ["lineB"]
    assert device["first_seen"] <= device["last_seen"]
    # A threshold of a millisecond: the report is older than that by now.
    (device,) = ws.client.get(f"{ws.api}/devices", params={**EVER, "silence_s": "0.001"}).json()["devices"]
    assert device["online"] is False


def test_devices_named_by_native_inferences_are_listed_and_counted_in_the_period(ws: Workspace) -> None:
    ingest(ws, [item("a", device_id="cam-1", timestamp=1_700_000_000), item("b", device_id="cam-1"),
                item("c", device_id="cam-2")])
    now = datetime.now(UTC).timestamp()
    devices = ws.client.get(f"{ws.api}/devices", params={"from": now - 3600, "to": now + 60}).json()["devices"]
    assert {d["device_id"]: d["inferences"] for d in devices} == {"cam-1": 1, "cam-2": 1}


def test_devices_refuses_bad_parameters(ws: Workspace) -> None:
    assert ws.client.get(f"{ws.api}/devices", params={"silence_s": "soon"}).status_code == 400
    assert ws.client.get(f"{ws.api}/devices", params={"silence_s": "-1"}).status_code == 400
    assert ws.client.get(f"{ws.api}/devices", params={"form": "x"}).status_code == 400
    assert ws.client.get(f"{ws.api}/devices", params={"model_id": "m/1"}).status_code == 400


def test_devices_of_another_workspace_are_forbidden(ws: Workspace, other: Workspace) -> None:
    assert other.client.get(f"{ws.api}/devices").status_code == 403


# -- POST /{workspace}/inference-stats (aggregator block) ----------------------------------------

def _aggregated(device: str | None = "edge-box-7") -> dict[str, Any]:
    return {
        "timestamp": "2026-11-27T10:11:12.123456",
        "source": "workflow",
        "source_info": "ModelMonitoringInferenceAggregatorBlockV1",
        "device_id": device,
        "inference_server_version": "1.8.3",
        "platform": "Linux", "hostname": "h", "ip_address": "10.0.0.1",
        "inference_results": [
            {"model_id": "coco/24", "class_name": "person", "confidence": 0.93, "inference_id": "agg-1",
             "model_type": "object-detection"},
            {"model_id": "coco/24", "class_name": "car", "confidence": 0.71, "inference_id": "agg-1",
             "model_type": "object-detection"},
            {"model_id": "coco/24", "class_name": "dog", "confidence": 0.55, "inference_id": "agg-2",
             "model_type": "object-detection"},
        ],
    }


def test_aggregator_report_is_stored_and_resent_once(app_server: InProcess, ws: Workspace) -> None:
    with _anonymous(app_server) as client:
        for _ in range(2):
            reply = client.post(f"/{ws.slug}/inference-stats", params={"api_key": ws.key}, json=_aggregated())
            assert reply.status_code == 200, reply.text
            assert reply.json()["status"] == "ok"
    rows = list_all(ws)
    assert len(rows) == 2
    assert {r["source"] for r in rows} == {"aggregator"}
    assert _stored_classes(rows) == Counter({"person": 1, "car": 1, "dog": 1})
    assert {r["timestamp"] for r in rows} == {"2026-11-27T10:11:12.123456Z"}
    (device,) = ws.client.get(f"{ws.api}/devices", params=EVER).json()["devices"]
    assert device["device_id"] == "edge-box-7" and device["server_version"] == "1.8.3"


def test_aggregator_auth_and_validation(app_server: InProcess, ws: Workspace, other: Workspace) -> None:
    with _anonymous(app_server) as client:
        assert client.post(f"/{ws.slug}/inference-stats", json=_aggregated()).status_code == 401
        assert client.post(f"/{ws.slug}/inference-stats", params={"api_key": other.key},
                           json=_aggregated()).status_code == 403
        bad = _aggregated()
        bad["inference_results"][0]["confidence"] = "high"
        reply = client.post(f"/{ws.slug}/inference-stats", params={"api_key": ws.key}, json=bad)
        assert reply.status_code == 400 and reply.json()["error"] == "Invalid request"
        body_key = {**_aggregated(device=None), "api_key": ws.key, "unknown": True}
        assert client.post(f"/{ws.slug}/inference-stats", json=body_key).status_code == 200
    assert total(ws) == 2


# -- GET /{workspace}/inference-stats -------------------------------------------------------------

def _roboflow_stats(ws: Workspace, **params: Any) -> dict[str, Any]:
    reply = ws.client.get(f"/{ws.slug}/inference-stats", params={"api_key": ws.key, **params})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_stats_rows_per_model_and_class_with_previous_period(ws: Workspace) -> None:
    ingest(ws, [
        item("p1", "coco/24", predictions=[box("person", 0.9),
                                            box("person", 0.7),
                                            box("car", 0.5)], time_s=0.02,
             timestamp="2026-11-26T12:00:00Z"),
        item("p2", "coco/24", predictions=[], time_s=0.04, timestamp="2026-11-26T13:00:00Z"),
        item("p0", "coco/24", predictions=[box("person", 0.6)], time_s=0.01,
             timestamp="2026-11-25T12:00:00Z"),
        item("x1", "other/1", predictions=[box("cat", 0.8)],
             timestamp="2026-11-26T12:00:00Z"),
    ])
    body = _roboflow_stats(ws, startTime="2026-11-26 00:00:00", endTime="2026-11-27 00:00:00")
    assert body["num_inferences"] == 3 and body["prev_num_inferences"] == 1
    assert body["num_errors"] == 0 and body["prev_num_errors"] == 0
    assert body["avg_confidence"] == pytest.approx((0.9 + 0.7 + 0.5 + 0.8) / 4)
    assert body["prev_avg_confidence"] == pytest.approx(0.6)
    rows = {(r["model_name"], r["predicted_class"]): r for r in body["inference_stats"]}
    assert set(rows) == {("coco/24", "person"), ("coco/24", "car"), ("other/1", "cat")}
    person = rows[("coco/24", "person")]
    assert person["num_inferences"] == 1 and person["prev_num_inferences"] == 1
    assert person["class_count"] == 2
    assert person["avg_confidence"] == pytest.approx(0.8)
    assert person["median_confidence"] == pytest.approx(0.8, abs=sketch.CONFIDENCE_ERROR)
    assert person["avg_response_time"] == pytest.approx(0.02)
    assert person["model_num_inferences"] == 2 and person["prev_model_num_inferences"] == 1
    assert person["deployment_types"] == "self-hosted"
    assert rows[("coco/24", "car")]["prev_num_inferences"] == 0
    only = _roboflow_stats(ws, startTime="2026-11-26 00:00:00", endTime="2026-11-27 00:00:00",
                           modelNames="other/1")
    assert [r["model_name"] for r in only["inference_stats"]] == ["other/1"]


def test_stats_without_data_are_null(ws: Workspace) -> None:
    body = _roboflow_stats(ws)
    assert body == {"num_inferences": 0, "prev_num_inferences": 0, "num_errors": 0, "prev_num_errors": 0,
                    "avg_confidence": None, "prev_avg_confidence": None, "avg_response_time": None,
                    "prev_avg_response_time": None, "inference_stats": []}


def test_stats_name_server_versions_of_pingback_data(app_server: InProcess, ws: Workspace) -> None:
    body = _report("pingback-tiny", ws.key)
    assert _pingback(app_server, body).status_code == 200
    stats = _roboflow_stats(ws, startTime="2000-01-01 00:00:00", endTime="2099-01-01 00:00:00")
    assert stats["num_inferences"] == _expected(body)[0]
    assert {r["inference_server_versions"] for r in stats["inference_stats"]} == {"1.8.3"}


def test_stats_refuses_bad_times_and_foreign_keys(ws: Workspace, other: Workspace) -> None:
    bad = ws.client.get(f"/{ws.slug}/inference-stats", params={"startTime": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"] == "Invalid request"
    backwards = ws.client.get(f"/{ws.slug}/inference-stats",
                              params={"startTime": "2026-01-02 00:00:00", "endTime": "2026-01-01 00:00:00"})
    assert backwards.status_code == 400
    assert ws.client.get(f"/{other.slug}/inference-stats").status_code == 403
