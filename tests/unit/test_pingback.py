"""The inference server's report and the aggregator block's, decoded and normalised; device rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferwatch.errors import InvalidRequest
from inferwatch.ingest import aggregator, pingback
from inferwatch.ingest.rows import DeviceRows
from tests.conftest import load

NOW_US = 1_767_225_600_000_000


def _decode(body: dict[str, Any]) -> pingback.Report:
    return pingback.decode(json.dumps(body).encode())


def test_rows_line_up_and_predictions_sum_to_counts() -> None:
    for name in ("pingback-tiny", "pingback-full"):
        report = _decode(load(name))
        rows, devices = pingback.to_rows(report, [7] * len(report.inference_results), NOW_US, 7)
        n = len(rows)
        assert all(len(getattr(rows, f)) == n for f in ("ws", "ts_us", "model_id", "task", "extra", "n_predictions"))
        assert sum(rows.n_predictions) == len(rows.p_class) == len(rows.p_keypoints)
        assert set(rows.source) == {"pingback"} and set(rows.ws) == {7}
        assert len(devices) == 1 and devices.device_id == ["edge-box-7"]


def test_result_keys_fall_back_to_each_request() -> None:
    body = load("pingback-tiny")
    body["api_key"] = None
    body["inference_results"][0]["inference"]["request"]["api_key"] = "other"
    keys = pingback.result_keys(_decode(body))
    assert keys[0] == "other" and set(keys[1:]) == {"FIXTURE_KEY"}


def test_single_response_object_is_one_image() -> None:
    body = load("pingback-full")
    first = body["inference_results"][0]["inference"]
    first["response"] = first["response"][0]
    report = _decode(body)
    rows, _ = pingback.to_rows(report, [1] * len(report.inference_results), NOW_US)
    assert rows.inference_id.count(first["inference_id"]) == 1


def test_missing_model_id_names_the_result() -> None:
    body = load("pingback-tiny")
    del body["inference_results"][2]["inference"]["request"]["model_id"]
    report = _decode(body)
    with pytest.raises(InvalidRequest) as caught:
        pingback.to_rows(report, [1] * len(report.inference_results), NOW_US)
    assert caught.value.detail == [{"index": 2, "error": "request.model_id is missing"}]


def test_aggregator_groups_entries_per_inference_and_model() -> None:
    body = {"timestamp": "2026-11-27T10:11:12", "inference_results": [
        {"model_id": "a/1", "class_name": "x", "confidence": 0.5, "inference_id": "i1"},
        {"model_id": "a/1", "class_name": "y", "confidence": 0.6, "inference_id": "i1"},
        {"model_id": "b/1", "class_name": "x", "confidence": 0.7, "inference_id": "i1"},
        {"model_id": "a/1", "class_name": "z", "confidence": 0.8},
    ]}
    rows, devices = aggregator.to_rows(aggregator.decode(json.dumps(body).encode()), 3, NOW_US)
    assert rows.model_id == ["a/1", "b/1", "a/1"] and rows.n_predictions == [2, 1, 1]
    assert rows.inference_id[:2] == ["i1", "i1"]
    assert len(devices) == 0


def test_device_rows_keep_one_row_per_device_latest_facts_and_span() -> None:
    devices = DeviceRows()
    devices.add(1, "d", 300, "s2", "1.9", "h", "Linux", ["b"])
    devices.add(1, "d", 100, "s1", "1.8", "h", "Linux", ["a"])
    devices.add(2, "d", 200, None, None, None, None, None)
    table = devices.to_arrow().to_pylist()
    assert len(table) == 2
    first = next(r for r in table if r["ws"] == 1)
    assert first["server_version"] == "1.9" and first["tags"] == ["b"]
    assert first["first_seen"] < first["last_seen"]
    assert next(r for r in table if r["ws"] == 2)["tags"] is None
