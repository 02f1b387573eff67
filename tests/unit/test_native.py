"""The native ingest format decoded and normalised, with the captured Roboflow responses."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import limits, native
from inferwatch.ingest.fields import metadata_value
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from tests.conftest import load

NOW_US = 1_767_225_600_000_000


def _rows(*items: dict[str, Any], ws: int = 1) -> tuple[InferenceRows, MetadataRows, list[str]]:
    body = json.dumps({"inferences": list(items)}).encode()
    return native.to_rows(native.decode_json(body), ws, NOW_US)


def _preds(rows: InferenceRows) -> list[dict[str, Any]]:
    names = ("class", "class_id", "confidence", "x", "y", "width", "height", "detection_id")
    columns = (rows.p_class, rows.p_class_id, rows.p_confidence, rows.p_x, rows.p_y, rows.p_width,
               rows.p_height, rows.p_detection_id)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def test_object_detection() -> None:
    result = load("response-object-detection")
    rows, meta, ids = _rows({"model_id": "m", "result": result})
    assert ids == [result["inference_id"]]
    assert (rows.task, rows.n_predictions, rows.image_width, rows.image_height) == (
        ["object-detection"], [2], [640], [480])
    assert rows.inference_time == [0.0213]
    assert rows.ts_us == rows.received_us == [NOW_US]
    assert _preds(rows) == [{k: p[k] for k in _preds(rows)[0]} for p in result["predictions"]]
    assert rows.extra == [None]
    assert len(meta) == 0


def test_empty_detection() -> None:
    rows, _, _ = _rows({"model_id": "m", "result": load("response-object-detection-empty")})
    assert (rows.task, rows.n_predictions, rows.p_class) == (["object-detection"], [0], [])


def test_instance_segmentation_points_kept_as_json() -> None:
    result = load("response-instance-segmentation")
    rows, _, _ = _rows({"model_id": "m", "result": result})
    assert rows.task == ["instance-segmentation"]
    assert [json.loads(p) for p in rows.p_points if p] == [result["predictions"][0]["points"]]


def test_keypoints_kept_as_json() -> None:
    result = load("response-keypoint-detection")
    rows, _, _ = _rows({"model_id": "m", "result": result})
    assert rows.task == ["keypoint-detection"]
    assert [json.loads(p) for p in rows.p_keypoints if p] == [result["predictions"][0]["keypoints"]]


def test_classification_verdict_is_the_top_class() -> None:
    rows, _, _ = _rows({"model_id": "m", "result": load("response-classification")})
    assert rows.task == ["classification"]
    assert (rows.n_predictions, rows.p_class, rows.p_class_id, rows.p_confidence) == ([1], ["blue"], [0], [0.8])
    assert rows.p_x == [None]
    assert json.loads(rows.extra[0] or "") == {"class_scores": {"blue": 0.8, "red": 0.2}}


def test_classification_without_top_takes_the_most_confident() -> None:
    result = {"predictions": [{"class": "a", "confidence": 0.3}, {"class": "b", "confidence": 0.6}]}
    rows, _, _ = _rows({"model_id": "m", "result": result})
    assert (rows.task, rows.p_class, rows.p_confidence) == (["classification"], ["b"], [0.6])


def test_multi_label_verdict_is_the_predicted_classes() -> None:
    rows, _, _ = _rows({"model_id": "m", "result": load("response-multi-label-classification")})
    assert rows.task == ["multi-label-classification"]
    assert (rows.n_predictions, rows.p_class, rows.p_class_id, rows.p_confidence) == ([1], ["rust"], [0], [0.9])
    assert json.loads(rows.extra[0] or "") == {"class_scores": {"rust": 0.9, "crack": 0.1}}


def test_multi_label_without_predicted_classes_uses_one_half() -> None:
    result = {"predictions": {"a": {"confidence": 0.5}, "b": {"confidence": 0.49}, "c": {"confidence": 0.7}}}
    rows, _, _ = _rows({"model_id": "m", "result": result})
    assert sorted(rows.p_class) == ["a", "c"]


def test_batch_of_two_shares_the_id() -> None:
    results = load("response-object-detection-batch-of-2")
    rows, _, ids = _rows(*({"model_id": "m", "result": r, "image_index": i} for i, r in enumerate(results)))
    assert ids == [results[0]["inference_id"]] * 2
    assert rows.image_index == [0, 1]
    assert rows.p_confidence == [0.8, 0.7000000000000001]


def test_item_fields() -> None:
    rows, meta, ids = _rows({"model_id": "m", "result": {}, "inference_id": "given", "device_id": "d",
                             "tags": ["a", "b"], "timestamp": "2026-01-01T00:00:01Z", "task": "custom",
                             "metadata": {"k": "v", "n": 2, "f": 0.25, "b": True}}, ws=7)
    assert ids == ["given"]
    assert (rows.ws, rows.device_id, rows.tags, rows.task) == ([7], ["d"], [["a", "b"]], ["custom"])
    assert rows.ts_us == [NOW_US + 1_000_000]
    assert rows.received_us == [NOW_US]
    assert list(zip(meta.field_name, meta.field_value, strict=True)) == [
        ("k", "v"), ("n", "2"), ("f", "0.25"), ("b", "true")]
    assert set(meta.inference_id) == {"given"} and set(meta.ws) == {7}


def test_unix_timestamps() -> None:
    rows, _, _ = _rows({"model_id": "m", "result": {}, "timestamp": 1767225600.123456})
    assert rows.ts_us == [1_767_225_600_123_456]


def test_generated_ids_are_unique() -> None:
    _, _, ids = _rows(*[{"model_id": "m", "result": {}}] * 50)
    assert len(set(ids)) == 50


@pytest.mark.parametrize("ts", [limits.MIN_TIMESTAMP_S - 1, limits.MAX_TIMESTAMP_S, "1999-12-31T23:59:59Z"])
def test_out_of_range_timestamps(ts: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _rows({"model_id": "m", "result": {}}, {"model_id": "m", "result": {}, "timestamp": ts})
    assert [e["index"] for e in caught.value.detail] == [1]


def test_decode_errors_name_every_bad_item() -> None:
    body = json.dumps({"inferences": [{"model_id": "m", "result": {}}, {"result": {}}, {"model_id": 3}]}).encode()
    with pytest.raises(InvalidRequest) as caught:
        native.decode_json(body)
    assert [e["index"] for e in caught.value.detail] == [1, 2]
    assert "model_id" in caught.value.detail[0]["error"]


def test_decode_json_refuses_what_is_not_a_batch() -> None:
    for body in (b"", b"{", b"[]", b'{"inferences": 1}'):
        with pytest.raises(InvalidRequest):
            native.decode_json(body)


def test_ndjson_skips_blank_lines_and_reports_line_indexes() -> None:
    good = json.dumps({"model_id": "m", "result": {}}).encode()
    assert len(native.decode_ndjson(b"\n".join([good, b"", b"   ", good, b""]))) == 2
    with pytest.raises(InvalidRequest) as caught:
        native.decode_ndjson(b"\n".join([good, b"{}", good, b"[oops"]))
    assert [e["index"] for e in caught.value.detail] == [1, 3]


def test_ndjson_item_limit() -> None:
    good = json.dumps({"model_id": "m", "result": {}}).encode()
    with pytest.raises(PayloadTooLarge):
        native.decode_ndjson(b"\n".join([good] * (limits.MAX_ITEMS_PER_BATCH + 1)))


def test_at_most_a_hundred_errors_are_reported() -> None:
    body = json.dumps({"inferences": [{"result": {}}] * 500}).encode()
    with pytest.raises(InvalidRequest) as caught:
        native.decode_json(body)
    assert len(caught.value.detail) == 100


@pytest.mark.parametrize(("value", "text"), [("x", "x"), (True, "true"), (False, "false"), (3, "3"),
                                             (0.1, "0.1"), (-2.5e-7, "-2.5e-07")])
def test_metadata_value(value: str | int | float | bool, text: str) -> None:
    assert metadata_value(value) == text


def test_metadata_rows_keep_the_last_write_per_key() -> None:
    meta = MetadataRows()
    meta.add(1, "a", "f", "1", 10)
    meta.add(1, "a", "F", "2", 11)
    meta.add(2, "a", "f", "3", 12)
    meta.add(1, "a", "f", "4", 13)
    table = meta.to_arrow().to_pylist()
    assert [(r["ws"], r["inference_id"], r["field_name"], r["field_value"]) for r in table] == [
        (1, "a", "F", "2"), (2, "a", "f", "3"), (1, "a", "f", "4")]


def test_inference_rows_to_arrow_nests_predictions_per_row() -> None:
    rows, _, _ = _rows({"model_id": "m", "result": load("response-object-detection"), "inference_id": "a"},
                       {"model_id": "m", "result": {"predictions": []}, "inference_id": "b"},
                       {"model_id": "m", "result": load("response-classification"), "inference_id": "c"})
    table = rows.to_arrow().to_pylist()
    assert [r["inference_id"] for r in table] == ["a", "b", "c"]
    assert [[p["class"] for p in r["predictions"]] for r in table] == [["scratch", "dent"], [], ["blue"]]
    assert table[0]["predictions"][1]["x"] == 300.0


def test_the_batch_schema_is_json_schema() -> None:
    (ref,), components = msgspec.json.schema_components([native.Batch])
    assert ref == {"$ref": "#/$defs/Batch"}
    assert "inferences" in components["Batch"]["properties"]
