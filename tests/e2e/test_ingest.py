"""Native batch ingest: every response type round-trips, identity deduplicates, formats and
encodings, and every kind of bad request is refused whole with nothing written."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest

from tests.conftest import Workspace, box, ingest, item, list_all, load, total


def _get(ws: Workspace, inference_id: str, **params: Any) -> dict[str, Any]:
    reply = ws.client.get(f"{ws.api}/inferences/{inference_id}", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _post(ws: Workspace, **kwargs: Any) -> Any:
    return ws.client.post(f"{ws.api}/inferences", **kwargs)


# -- round trips of every captured response type -------------------------------------------------

TASKS = [
    ("response-object-detection", "object-detection"),
    ("response-object-detection-empty", "object-detection"),
    ("response-instance-segmentation", "instance-segmentation"),
    ("response-keypoint-detection", "keypoint-detection"),
    ("response-classification", "classification"),
    ("response-multi-label-classification", "multi-label-classification"),
]


@pytest.mark.parametrize(("name", "task"), TASKS)
def test_every_fixture_is_accepted_with_its_task(ws: Workspace, name: str, task: str) -> None:
    result = load(name)
    reply = ingest(ws, [{"model_id": "m/1", "result": result}])
    assert reply == {"status": "ok", "accepted": 1, "inference_ids": [result["inference_id"]]}
    (row,) = list_all(ws)
    assert row["task"] == task
    assert row["image"] == result["image"]
    assert row["inference_time"] == result["time"]


def test_object_detection_keeps_geometry_class_ids_image_size_and_time(ws: Workspace) -> None:
    result = load("response-object-detection")
    ingest(ws, [{"model_id": "pcb/7", "result": result, "device_id": "cam-1", "tags": ["lineA", "night"]}])
    row = _get(ws, result["inference_id"])
    assert row["model_id"] == "pcb/7"
    assert row["device_id"] == "cam-1"
    assert row["tags"] == ["lineA", "night"]
    assert row["image"] == {"width": 640, "height": 480}
    assert row["inference_time"] == pytest.approx(0.0213)
    assert row["n_predictions"] == 2
    assert row["max_confidence"] == pytest.approx(0.91)
    assert row["classes"] == ["dent", "scratch"]
    keys = ("class", "class_id", "confidence", "x", "y", "width", "height", "detection_id")
    assert [{k: p[k] for k in keys} for p in row["predictions"]] == [
        {k: p[k] for k in keys} for p in result["predictions"]]
    assert row["image_index"] == 0
    assert row["image_count"] == 1


def test_empty_detection_is_an_inference_without_predictions(ws: Workspace) -> None:
    result = load("response-object-detection-empty")
    ingest(ws, [{"model_id": "m/1", "result": result}])
    row = _get(ws, result["inference_id"])
    assert row["predictions"] == [] and row["n_predictions"] == 0 and row["max_confidence"] is None
    assert row["image"] == {"width": 640, "height": 480}


def test_instance_segmentation_keeps_points(ws: Workspace) -> None:
    result = load("response-instance-segmentation")
    ingest(ws, [{"model_id": "m/1", "result": result}])
    (pred,) = _get(ws, result["inference_id"])["predictions"]
    expected = result["predictions"][0]
    assert pred["points"] == expected["points"]
    assert (pred["x"], pred["y"], pred["width"], pred["height"]) == (100.0, 80.0, 40.0, 30.0)
    assert (pred["class"], pred["class_id"], pred["detection_id"]) == ("weld", 0, expected["detection_id"])


def test_keypoint_detection_keeps_keypoints(ws: Workspace) -> None:
    result = load("response-keypoint-detection")
    ingest(ws, [{"model_id": "m/1", "result": result}])
    (pred,) = _get(ws, result["inference_id"])["predictions"]
    assert pred["keypoints"] == result["predictions"][0]["keypoints"]
    assert [k["class"] for k in pred["keypoints"]] == ["nose", "left_eye"]
    assert (pred["class"], pred["confidence"]) == ("person", 0.88)


def test_classification_keeps_the_verdict_and_every_score(ws: Workspace) -> None:
    result = load("response-classification")
    ingest(ws, [{"model_id": "colors/1", "result": result}])
    row = _get(ws, result["inference_id"])
    assert row["task"] == "classification"
    assert row["predictions"] == [{"class": "blue", "class_id": 0, "confidence": 0.8}]
    assert row["class_scores"] == {"blue": 0.8, "red": 0.2}
    assert row["image"] == {"width": 224, "height": 224}


def test_multi_label_classification_keeps_chosen_classes_and_scores(ws: Workspace) -> None:
    result = load("response-multi-label-classification")
    ingest(ws, [{"model_id": "defects/2", "result": result}])
    row = _get(ws, result["inference_id"])
    assert row["task"] == "multi-label-classification"
    assert row["predictions"] == [{"class": "rust", "class_id": 0, "confidence": 0.9}]
    assert row["class_scores"] == {"rust": 0.9, "crack": 0.1}


def test_batch_request_images_share_an_id_and_are_told_apart_by_image_index(ws: Workspace) -> None:
    results = load("response-object-detection-batch-of-2")
    shared = results[0]["inference_id"]
    ingest(ws, [{"model_id": "m/1", "result": r, "image_index": i} for i, r in enumerate(results)])
    first = _get(ws, shared)
    second = _get(ws, shared, image_index=1)
    assert (first["image_index"], first["image_count"]) == (0, 2)
    assert (second["image_index"], second["image_count"]) == (1, 2)
    assert first["predictions"][0]["detection_id"] == results[0]["predictions"][0]["detection_id"]
    assert second["predictions"][0]["confidence"] == pytest.approx(0.7)
    assert ws.client.get(f"{ws.api}/inferences/{shared}", params={"image_index": 5}).status_code == 404
    # Re-sending the batch adds nothing.
    ingest(ws, [{"model_id": "m/1", "result": r, "image_index": i} for i, r in enumerate(results)])
    assert total(ws) == 2
    assert sorted(r["image_index"] for r in list_all(ws)) == [0, 1]


def test_unknown_fields_are_ignored_not_refused(ws: Workspace) -> None:
    result = {**load("response-object-detection"), "visualization": None, "frame_id": None, "whatever": [1, 2]}
    reply = ingest(ws, [{"model_id": "m/1", "result": result, "future_field": {"x": 1}}])
    assert reply["accepted"] == 1
    assert total(ws) == 1


def test_generated_ids_when_none_is_given(ws: Workspace) -> None:
    reply = ingest(ws, [{"model_id": "m/1", "result": {"predictions": []}} for _ in range(3)])
    ids = reply["inference_ids"]
    assert len(set(ids)) == 3
    assert sorted(r["inference_id"] for r in list_all(ws)) == sorted(ids)


def test_item_inference_id_wins_over_the_results(ws: Workspace) -> None:
    result = load("response-object-detection")
    reply = ingest(ws, [{"model_id": "m/1", "result": result, "inference_id": "mine"}])
    assert reply["inference_ids"] == ["mine"]
    assert _get(ws, "mine")["n_predictions"] == 2


# -- identity --------------------------------------------------------------------------------------

def test_resent_inference_counts_once(ws: Workspace) -> None:
    batch = [item(f"r{i}", predictions=[box("a", 0.5)]) for i in range(20)]
    ingest(ws, batch)
    ingest(ws, batch)
    ingest(ws, batch[:5])
    totals = ws.client.get(f"{ws.api}/stats", params={"from": "2000-01-01"}).json()["totals"]
    assert totals["inferences"] == 20
    assert totals["predictions"] == 20
    assert len(list_all(ws)) == 20


def test_duplicates_within_one_batch_count_once(ws: Workspace) -> None:
    ingest(ws, [item("d1", predictions=[box("a", 0.5)]), item("d1", predictions=[box("a", 0.5)]), item("d2")])
    assert sorted(r["inference_id"] for r in list_all(ws)) == ["d1", "d2"]
    assert ws.client.get(f"{ws.api}/stats", params={"from": "2000-01-01"}).json()["totals"]["predictions"] == 1


def test_resent_with_other_content_keeps_the_first(ws: Workspace) -> None:
    ingest(ws, [item("k", "first-model", predictions=[box("a", 0.5)])])
    ingest(ws, [item("k", "second-model", predictions=[box("b", 0.9), box("c", 0.9)])])
    row = _get(ws, "k")
    assert row["model_id"] == "first-model"
    assert [p["class"] for p in row["predictions"]] == ["a"]


# -- timestamps ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "stored"), [
    ("2026-03-04T05:06:07Z", "2026-03-04T05:06:07Z"),
    ("2026-03-04T05:06:07", "2026-03-04T05:06:07Z"),  # no offset means UTC
    ("2026-03-04T07:06:07+02:00", "2026-03-04T05:06:07Z"),
    (1772600767, "2026-03-04T05:06:07Z"),
    (1772600767.25, "2026-03-04T05:06:07.250000Z"),
])
def test_timestamps_are_stored_in_utc(ws: Workspace, sent: object, stored: str) -> None:
    ingest(ws, [item("t", timestamp=sent)])
    assert _get(ws, "t")["timestamp"] == stored


def test_missing_timestamp_is_the_receive_time(ws: Workspace) -> None:
    ingest(ws, [item("now")])
    row = _get(ws, "now")
    assert row["timestamp"] == row["received_at"]
    assert row["timestamp"].startswith(("2026", "2027", "2028", "2029", "203"))


# -- formats and encodings ---------------------------------------------------------------------

def test_ndjson(ws: Workspace) -> None:
    lines = [json.dumps(item(f"n{i}", predictions=[box("a", 0.5)])) for i in range(50)]
    body = ("\n".join(lines) + "\n\n").encode()
    reply = _post(ws, content=body, headers={"Content-Type": "application/x-ndjson"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 50
    assert total(ws) == 50


def test_ndjson_bad_line_rejects_the_whole_batch(ws: Workspace) -> None:
    body = "\n".join([json.dumps(item("ok1")), json.dumps({"model_id": "m"}), json.dumps(item("ok2")), "{"])
    reply = _post(ws, content=body.encode(), headers={"Content-Type": "application/x-ndjson"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "Invalid request"
    assert [d["index"] for d in reply.json()["detail"]] == [1, 3]
    assert total(ws) == 0


def test_gzip_json_and_gzip_ndjson(ws: Workspace) -> None:
    body = gzip.compress(json.dumps({"inferences": [item(f"g{i}") for i in range(30)]}).encode())
    reply = _post(ws, content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    nd = gzip.compress("\n".join(json.dumps(item(f"h{i}")) for i in range(30)).encode())
    reply = _post(ws, content=nd, headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert total(ws) == 60


def test_multi_member_gzip_is_read_whole(ws: Workspace) -> None:
    """`cat a.gz b.gz` is one valid gzip stream (RFC 1952): every member's items count."""
    first = gzip.compress((json.dumps(item("mm1")) + "\n").encode())
    second = gzip.compress((json.dumps(item("mm2")) + "\n").encode())
    reply = _post(ws, content=first + second,
                  headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert sorted(r["inference_id"] for r in list_all(ws)) == ["mm1", "mm2"]


# Named: gzip bytes hold the time they were made, and every xdist worker must collect the same ids.
@pytest.mark.parametrize(("body", "encoding"), [
    (b"definitely not gzip", "gzip"),
    (gzip.compress(json.dumps({"inferences": [item("trunc")]}).encode())[:-12], "gzip"),
    (json.dumps({"inferences": [item("br")]}).encode(), "br"),
], ids=["not-gzip", "truncated-gzip", "brotli"])
def test_bad_encodings_are_400(ws: Workspace, body: bytes, encoding: str) -> None:
    reply = _post(ws, content=body, headers={"Content-Type": "application/json", "Content-Encoding": encoding})
    assert reply.status_code == 400
    assert reply.json()["error"] == "Invalid request"
    assert total(ws) == 0


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """~130 KB that inflates past the 128 MiB decoded-body limit."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(130)) + packer.flush()


def test_gzip_bomb_is_413(ws: Workspace, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 1 << 20
    reply = _post(ws, content=gzip_bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status_code == 413
    assert reply.json()["error"]
    assert total(ws) == 0


def test_oversize_body_is_413(ws: Workspace) -> None:
    pad = "x" * (33 * 1024 * 1024)
    body = json.dumps({"inferences": [item("big")], "pad": pad}).encode()
    reply = _post(ws, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["error"]

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        yield b'{"inferences": [], "pad": "'
        for _ in range(33):
            yield b"x" * (1 << 20)
        yield b'"}'

    reply = _post(ws, content=chunks(), headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert total(ws) == 0


# -- invalid batches are refused whole -----------------------------------------------------------

def _raw(ws: Workspace, text: str) -> Any:
    return _post(ws, content=text.encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("body", [
    "not json",
    "[]",
    '{"inferences": {}}',
    '{"no_inferences": []}',
    '{"inferences": [1]}',
    "",
])
def test_malformed_bodies_are_400(ws: Workspace, body: str) -> None:
    reply = _raw(ws, body)
    assert reply.status_code == 400
    assert reply.json()["error"] == "Invalid request"
    assert "detail" in reply.json()
    assert total(ws) == 0


BAD_ITEMS: list[tuple[str, Any]] = [
    ("no model_id", {"result": {"predictions": []}}),
    ("no result", {"model_id": "m"}),
    ("empty model_id", {"model_id": "", "result": {}}),
    ("confidence over 1", {"model_id": "m", "result": {"predictions": [box("a", 1.5)]}}),
    ("negative confidence", {"model_id": "m", "result": {"predictions": [box("a", -0.1)]}}),
    ("class missing", {"model_id": "m", "result": {"predictions": [{"confidence": 0.5}]}}),
    ("string coordinate", {"model_id": "m", "result": {"predictions": [box("a", 0.5, x="left")]}}),
    ("negative time", {"model_id": "m", "result": {"time": -1}}),
    ("negative image width", {"model_id": "m", "result": {"image": {"width": -3, "height": 4}}}),
    ("image_index negative", {"model_id": "m", "result": {}, "image_index": -1}),
    ("image_index not an int", {"model_id": "m", "result": {}, "image_index": 1.5}),
    ("tags not a list", {"model_id": "m", "result": {}, "tags": "lineA"}),
    ("empty tag", {"model_id": "m", "result": {}, "tags": [""]}),
    ("control chars in id", {"model_id": "m", "result": {}, "inference_id": "a\nb"}),
    ("id too long", {"model_id": "m", "result": {}, "inference_id": "i" * 257}),
    ("model_id too long", {"model_id": "m" * 257, "result": {}}),
    ("device_id too long", {"model_id": "m", "result": {}, "device_id": "d" * 257}),
    ("class too long", {"model_id": "m", "result": {"predictions": [box("c" * 257, 0.5)]}}),
    ("class with NUL", {"model_id": "m", "result": {"predictions": [box("a\u0000b", 0.5)]}}),
    ("tag too long", {"model_id": "m", "result": {}, "tags": ["t" * 257]}),
    ("class_id not an int", {"model_id": "m", "result": {"predictions": [box("a", 0.5, class_id="zero")]}}),
    ("class_id past int32", {"model_id": "m", "result": {"predictions": [box("a", 0.5, class_id=2**31)]}}),
    ("coordinate absurd", {"model_id": "m", "result": {"predictions": [box("a", 0.5, width=1e12)]}}),
    ("image height absurd", {"model_id": "m", "result": {"image": {"width": 10, "height": 10**7}}}),
    ("inference time absurd", {"model_id": "m", "result": {"time": 1e7}}),
    ("metadata value empty", {"model_id": "m", "result": {}, "metadata": {"f": ""}}),
    ("metadata value too long", {"model_id": "m", "result": {}, "metadata": {"f": "v" * 4097}}),
    ("metadata name too long", {"model_id": "m", "result": {}, "metadata": {"f" * 129: "v"}}),
    ("metadata value a list", {"model_id": "m", "result": {}, "metadata": {"f": ["v"]}}),
    ("too many tags", {"model_id": "m", "result": {}, "tags": [f"t{i}" for i in range(65)]}),
    ("too many metadata fields", {"model_id": "m", "result": {}, "metadata": {f"f{i}": "v" for i in range(257)}}),
    ("timestamp in 1900", {"model_id": "m", "result": {}, "timestamp": "1900-01-01T00:00:00Z"}),
    ("timestamp in 2200", {"model_id": "m", "result": {}, "timestamp": "2200-01-01T00:00:00Z"}),
    ("timestamp in milliseconds", {"model_id": "m", "result": {}, "timestamp": 1732700000000}),
    ("timestamp negative", {"model_id": "m", "result": {}, "timestamp": -5}),
    ("timestamp not a time", {"model_id": "m", "result": {}, "timestamp": "yesterday"}),
]


@pytest.mark.parametrize(("why", "bad"), BAD_ITEMS, ids=[why for why, _ in BAD_ITEMS])
def test_one_bad_item_rejects_the_batch(ws: Workspace, why: str, bad: Any) -> None:
    reply = _post(ws, json={"inferences": [item("good-0"), bad, item("good-2")]})
    assert reply.status_code == 400, why
    body = reply.json()
    assert body["error"] == "Invalid request"
    assert [d["index"] for d in body["detail"]] == [1], body
    assert all(isinstance(d["error"], str) and d["error"] for d in body["detail"])
    assert total(ws) == 0
    assert ws.client.get(f"{ws.api}/metadata/fields").json()["fields"] == []


def test_every_bad_item_is_reported(ws: Workspace) -> None:
    items = [item("a"), {"model_id": "m"}, item("b"), {"result": {}}, item("c")]
    reply = _post(ws, json={"inferences": items})
    assert reply.status_code == 400
    assert [d["index"] for d in reply.json()["detail"]] == [1, 3]
    items = [item("a"), item("b", timestamp=1.0), item("c"), item("d", timestamp="2999-01-01T00:00:00Z")]
    reply = _post(ws, json={"inferences": items})
    assert reply.status_code == 400
    assert [d["index"] for d in reply.json()["detail"]] == [1, 3]
    assert total(ws) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("where", ["timestamp", "time", "confidence", "x", "metadata"])
def test_nan_and_infinity_are_refused(ws: Workspace, literal: str, where: str) -> None:
    result = '{"predictions": [{"class": "a", "confidence": 0.5}]}'
    extra = ""
    if where == "timestamp":
        extra = f', "timestamp": {literal}'
    elif where == "time":
        result = f'{{"time": {literal}, "predictions": []}}'
    elif where == "confidence":
        result = f'{{"predictions": [{{"class": "a", "confidence": {literal}}}]}}'
    elif where == "x":
        result = f'{{"predictions": [{{"class": "a", "confidence": 0.5, "x": {literal}}}]}}'
    else:
        extra = f', "metadata": {{"f": {literal}}}'
    reply = _raw(ws, f'{{"inferences": [{{"model_id": "m", "inference_id": "nan", "result": {result}{extra}}}]}}')
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "Invalid request"
    assert total(ws) == 0


def test_too_many_predictions_in_one_item(ws: Workspace) -> None:
    preds = [{"class": "a", "confidence": 0.5, "x": 1.0, "y": 1.0, "width": 1.0, "height": 1.0}] * 10_001
    reply = _post(ws, json={"inferences": [item("ok"), {"model_id": "m", "result": {"predictions": preds}}]})
    assert reply.status_code == 400
    assert [d["index"] for d in reply.json()["detail"]] == [1]
    assert total(ws) == 0


def test_too_many_items_in_ndjson_is_413(ws: Workspace) -> None:
    line = json.dumps({"model_id": "m", "result": {}}).encode()
    reply = _post(ws, content=b"\n".join([line] * 10_001), headers={"Content-Type": "application/x-ndjson"})
    assert reply.status_code == 413
    assert total(ws) == 0


def test_too_many_items_in_json_with_a_bad_one_is_413(ws: Workspace) -> None:
    items: list[Any] = [{"model_id": "m", "result": {}}] * 10_000 + [{"model_id": "m"}]
    reply = _post(ws, json={"inferences": items})
    assert reply.status_code == 413
    assert total(ws) == 0


def test_too_many_valid_items_in_json_is_413(ws: Workspace) -> None:
    items = [{"model_id": "m", "inference_id": f"i{i}", "result": {}} for i in range(10_001)]
    reply = _post(ws, json={"inferences": items})
    assert reply.status_code == 413
    assert total(ws) == 0


def test_an_oversize_result_is_refused(ws: Workspace) -> None:
    """Per-class scores of a multi-label result are kept as JSON, bounded per item."""
    scores = {f"class-{n:06d}": {"confidence": 0.1} for n in range(60_000)}
    result = {"predictions": scores, "predicted_classes": []}
    reply = _post(ws, json={"inferences": [item("fine"), {"model_id": "m", "result": result}]})
    assert reply.status_code == 400
    assert [d["index"] for d in reply.json()["detail"]] == [1]
    assert total(ws) == 0


def test_a_full_batch_at_the_limit_is_accepted(ws: Workspace) -> None:
    items = [{"model_id": "m", "inference_id": f"i{i}", "result": {}} for i in range(10_000)]
    reply = _post(ws, json={"inferences": items})
    assert reply.status_code == 200
    assert reply.json()["accepted"] == 10_000
    assert total(ws) == 10_000


@pytest.mark.parametrize("content_type", [
    "application/x-ndjson; charset=utf-8", "application/jsonl", "application/jsonlines", "APPLICATION/X-NDJSON"])
def test_ndjson_content_type_variants(ws: Workspace, content_type: str) -> None:
    body = "\n".join(json.dumps(item(f"v{i}")) for i in range(3)).encode()
    reply = _post(ws, content=body, headers={"Content-Type": content_type})
    assert reply.status_code == 200, reply.text
    assert total(ws) == 3


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain",
                                          "application/json; charset=utf-8"])
def test_a_json_batch_is_read_whatever_the_content_type_says(ws: Workspace, content_type: str | None) -> None:
    """`curl -d` sends form-urlencoded; a JSON body is still a JSON body."""
    headers = {"Content-Type": content_type} if content_type else {}  # httpx sends none for raw bytes
    reply = _post(ws, content=json.dumps({"inferences": [item("ct")]}).encode(), headers=headers)
    assert reply.status_code == 200, reply.text
    assert total(ws) == 1


def test_gzip_encoding_name_is_case_insensitive(ws: Workspace) -> None:
    body = gzip.compress(json.dumps({"inferences": [item("gz")]}).encode())
    reply = _post(ws, content=body, headers={"Content-Type": "application/json", "Content-Encoding": "GZip"})
    assert reply.status_code == 200, reply.text
    assert total(ws) == 1


def test_concurrent_overlapping_batches_count_each_inference_once(ws: Workspace) -> None:
    """Requests that arrive together share one commit; the duplicates among them must still
    collapse to one row each."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [[item(f"c{(start + n) % 60:02d}", predictions=[box("a", 0.5)]) for n in range(30)]
               for start in range(0, 60, 5)]

    def send(batch: list[dict[str, Any]]) -> int:
        return ws.client.post(f"{ws.api}/inferences", json={"inferences": batch}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, batches * 2)) == {200}
    rows = list_all(ws)
    assert sorted(r["inference_id"] for r in rows) == [f"c{n:02d}" for n in range(60)]
    totals = ws.client.get(f"{ws.api}/stats", params={"from": "2000-01-01"}).json()["totals"]
    assert (totals["inferences"], totals["predictions"]) == (60, 60)
