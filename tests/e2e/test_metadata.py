"""Roboflow's custom metadata call, native item metadata, and the metadata fields listing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Workspace, attach, field_names, ingest, item, list_all, total


def _meta(ws: Workspace, inference_id: str) -> dict[str, str]:
    rows = [r for r in list_all(ws) if r["inference_id"] == inference_id]
    assert len(rows) == 1
    single = ws.client.get(f"{ws.api}/inferences/{inference_id}").json()["metadata"]
    assert single == rows[0]["metadata"]
    return dict(single)


def _post(ws: Workspace, body: Any) -> Any:
    if isinstance(body, bytes):
        return ws.client.post(f"/{ws.slug}/inference-stats/metadata", content=body,
                              headers={"Content-Type": "application/json"})
    return ws.client.post(f"/{ws.slug}/inference-stats/metadata", json=body)


def _fields(ws: Workspace, **params: Any) -> list[dict[str, Any]]:
    reply = ws.client.get(f"{ws.api}/metadata/fields", params=params)
    assert reply.status_code == 200, reply.text
    fields: list[dict[str, Any]] = reply.json()["fields"]
    return fields


def test_documented_call_answers_ok(ws: Workspace) -> None:
    ingest(ws, [item("a12a19a9-a933-44c9-970c-a55ea03bb453")])
    body = {"api_key": ws.key, "data": [{"inference_ids": ["a12a19a9-a933-44c9-970c-a55ea03bb453"],
                                         "field_name": "camera_location", "field_value": "canada"}]}
    reply = _post(ws, body)
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"
    assert _meta(ws, "a12a19a9-a933-44c9-970c-a55ea03bb453") == {"camera_location": "canada"}


def test_many_entries_and_many_ids_per_entry(ws: Workspace) -> None:
    ids = [f"i{n:03d}" for n in range(300)]
    ingest(ws, [item(i) for i in ids])
    attach(ws, [
        {"inference_ids": ids[:200], "field_name": "line", "field_value": "A"},
        {"inference_ids": ids[200:], "field_name": "line", "field_value": "B"},
        {"inference_ids": ids[::3], "field_name": "shift", "field_value": "night"},
    ])
    rows = {r["inference_id"]: r["metadata"] for r in list_all(ws)}
    assert rows["i000"] == {"line": "A", "shift": "night"}
    assert rows["i001"] == {"line": "A"}
    assert rows["i201"] == {"line": "B", "shift": "night"}
    assert sum(1 for m in rows.values() if m.get("line") == "B") == 100
    assert sum(1 for m in rows.values() if "shift" in m) == 100


def test_last_write_wins_across_calls_and_within_one(ws: Workspace) -> None:
    ingest(ws, [item("x"), item("y")])
    attach(ws, [{"inference_ids": ["x", "y"], "field_name": "state", "field_value": "first"}])
    attach(ws, [{"inference_ids": ["x"], "field_name": "state", "field_value": "second"}])
    assert _meta(ws, "x") == {"state": "second"}
    assert _meta(ws, "y") == {"state": "first"}
    attach(ws, [
        {"inference_ids": ["y"], "field_name": "state", "field_value": "a"},
        {"inference_ids": ["y"], "field_name": "state", "field_value": "b"},
        {"inference_ids": ["y"], "field_name": "state", "field_value": "c"},
    ])
    assert _meta(ws, "y") == {"state": "c"}
    # One row per (inference, field): the overwritten values are gone from the field listing.
    (state,) = _fields(ws)
    assert state["distinct_values"] == 2
    assert {v["value"] for v in state["top_values"]} == {"second", "c"}


def test_metadata_before_the_inference_is_kept_and_shows_up_when_it_arrives(ws: Workspace) -> None:
    attach(ws, [{"inference_ids": ["early"], "field_name": "camera", "field_value": "north"}])
    reply = ws.client.get(f"{ws.api}/inferences/early")
    assert reply.status_code == 404
    assert "metadata" in json.dumps(reply.json()["detail"])
    assert reply.json()["detail"]["metadata"] == {"camera": "north"}
    assert total(ws) == 0
    assert list_all(ws, **{"meta.camera": "north"}) == []
    ingest(ws, [item("early")])
    assert _meta(ws, "early") == {"camera": "north"}
    assert [r["inference_id"] for r in list_all(ws, **{"meta.camera": "north"})] == ["early"]


def test_metadata_reaches_every_image_of_a_batched_id(ws: Workspace) -> None:
    attach(ws, [{"inference_ids": ["batch"], "field_name": "lot", "field_value": "7"}])
    ingest(ws, [item("batch", image_index=0), item("batch", image_index=1)])
    rows = list_all(ws, **{"meta.lot": "7"})
    assert sorted(r["image_index"] for r in rows) == [0, 1]
    assert all(r["metadata"] == {"lot": "7"} for r in rows)


def test_field_names_are_case_sensitive(ws: Workspace) -> None:
    ingest(ws, [item("c")])
    attach(ws, [
        {"inference_ids": ["c"], "field_name": "my_location", "field_value": "lower"},
        {"inference_ids": ["c"], "field_name": "My_location", "field_value": "upper"},
    ])
    assert _meta(ws, "c") == {"my_location": "lower", "My_location": "upper"}
    assert sorted(field_names(ws)) == ["My_location", "my_location"]
    assert len(list_all(ws, **{"meta.my_location": "lower"})) == 1
    assert list_all(ws, **{"meta.my_location": "upper"}) == []
    assert list_all(ws, **{"meta.MY_LOCATION": "lower"}) == []
    # Values are case-sensitive too.
    assert list_all(ws, **{"meta.my_location": "LOWER"}) == []


def test_strings_are_kept_verbatim_and_numbers_and_flags_keep_their_type(ws: Workspace) -> None:
    ingest(ws, [item("v")])
    attach(ws, [
        {"inference_ids": ["v"], "field_name": "note", "field_value": "Zürich, line 3\tbay 2 ✓"},
        {"inference_ids": ["v"], "field_name": "count", "field_value": 3},
        {"inference_ids": ["v"], "field_name": "ratio", "field_value": 0.5},
        {"inference_ids": ["v"], "field_name": "ok", "field_value": True},
        {"inference_ids": ["v"], "field_name": "long", "field_value": "x" * 4096},
        {"inference_ids": ["v"], "field_name": "as_text", "field_value": "3"},
        {"inference_ids": ["v"], "field_name": "float_text", "field_value": "3.0"},
        {"inference_ids": ["v"], "field_name": "whole_float", "field_value": 3.0},
    ])
    meta = _meta(ws, "v")
    assert meta["note"] == "Zürich, line 3\tbay 2 ✓"
    assert (meta["count"], meta["ratio"], meta["ok"]) == (3, 0.5, True)
    assert meta["long"] == "x" * 4096
    # A string answers as it was sent, even when it reads as a number.
    assert (meta["as_text"], meta["float_text"]) == ("3", "3.0")
    assert meta["whole_float"] == 3.0 and isinstance(meta["whole_float"], float)
    # The text they are kept as is what plain equality filters match, as before types existed.
    assert [r["inference_id"] for r in list_all(ws, **{"meta.count": "3", "meta.ok": "true"})] == ["v"]


def test_unknown_extra_keys_are_ignored(ws: Workspace) -> None:
    reply = _post(ws, {"data": [{"inference_ids": ["u"], "field_name": "f", "field_value": "v", "extra": 1}],
                       "nocache": True})
    assert reply.status_code == 200
    assert field_names(ws) == ["f"]


def test_empty_data_is_fine_and_writes_nothing(ws: Workspace) -> None:
    reply = _post(ws, {"data": []})
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"
    assert field_names(ws) == []


GOOD = {"inference_ids": ["g"], "field_name": "f", "field_value": "v"}
MALFORMED: list[tuple[str, Any]] = [
    ("not json", b"{not json"),
    ("empty body", b""),
    ("a list", [GOOD]),
    ("data missing", {"api_key": None}),
    ("data an object", {"data": GOOD}),
    ("data a string", {"data": "x"}),
    ("entry not an object", {"data": ["x"]}),
    ("inference_ids missing", {"data": [{"field_name": "f", "field_value": "v"}]}),
    ("inference_ids a string", {"data": [{**GOOD, "inference_ids": "g"}]}),
    ("inference_ids empty", {"data": [{**GOOD, "inference_ids": []}]}),
    ("inference_ids of numbers", {"data": [{**GOOD, "inference_ids": [1, 2]}]}),
    ("inference_id empty", {"data": [{**GOOD, "inference_ids": [""]}]}),
    ("inference_id too long", {"data": [{**GOOD, "inference_ids": ["i" * 257]}]}),
    ("field_name missing", {"data": [{"inference_ids": ["g"], "field_value": "v"}]}),
    ("field_name empty", {"data": [{**GOOD, "field_name": ""}]}),
    ("field_name too long", {"data": [{**GOOD, "field_name": "f" * 129}]}),
    ("field_name with newline", {"data": [{**GOOD, "field_name": "a\nb"}]}),
    ("field_name a number", {"data": [{**GOOD, "field_name": 5}]}),
    ("field_value missing", {"data": [{"inference_ids": ["g"], "field_name": "f"}]}),
    ("field_value empty", {"data": [{**GOOD, "field_value": ""}]}),
    ("field_value null", {"data": [{**GOOD, "field_value": None}]}),
    ("field_value too long", {"data": [{**GOOD, "field_value": "v" * 4097}]}),
    ("field_value an object", {"data": [{**GOOD, "field_value": {"a": 1}}]}),
    ("field_value NaN", b'{"data": [{"inference_ids": ["g"], "field_name": "f", "field_value": NaN}]}'),
    ("field_value Infinity", b'{"data": [{"inference_ids": ["g"], "field_name": "f", "field_value": 1e999}]}'),
    ("one bad entry among good", {"data": [GOOD, {**GOOD, "field_value": ""}, GOOD]}),
]


@pytest.mark.parametrize(("why", "body"), MALFORMED, ids=[why for why, _ in MALFORMED])
def test_malformed_calls_are_400_and_write_nothing(ws: Workspace, why: str, body: Any) -> None:
    reply = _post(ws, body)
    assert reply.status_code == 400, why
    answer = reply.json()
    assert answer["error"] == "Invalid request"
    assert answer.get("detail")
    assert field_names(ws) == []


def test_too_many_ids_in_one_call_is_413_and_writes_nothing(ws: Workspace) -> None:
    ids = [f"id{n}" for n in range(50_001)]
    reply = _post(ws, {"data": [{"inference_ids": ids, "field_name": "a", "field_value": "1"},
                                {"inference_ids": ids, "field_name": "b", "field_value": "1"}]})
    assert reply.status_code == 413
    assert reply.json()["error"]
    assert field_names(ws) == []


def test_too_many_entries_in_one_call_is_413(ws: Workspace) -> None:
    entry = {"inference_ids": ["e"], "field_name": "f", "field_value": "v"}
    reply = _post(ws, {"data": [entry] * 10_001})
    assert reply.status_code == 413
    assert field_names(ws) == []


def test_native_item_metadata_and_later_roboflow_metadata(ws: Workspace) -> None:
    ingest(ws, [item("n1", metadata={"site": "lyon", "lot": 12, "rework": False}), item("n2")])
    assert _meta(ws, "n1") == {"site": "lyon", "lot": 12, "rework": False}
    assert _meta(ws, "n2") == {}
    attach(ws, [{"inference_ids": ["n1"], "field_name": "site", "field_value": "paris"},
                {"inference_ids": ["n1"], "field_name": "lot", "field_value": "12b"}])
    assert _meta(ws, "n1") == {"site": "paris", "lot": "12b", "rework": False}


def test_fields_listing_counts_and_top_values(ws: Workspace) -> None:
    ids = [f"f{n:02d}" for n in range(10)]
    attach(ws, [
        {"inference_ids": ids[:5], "field_name": "color", "field_value": "red"},
        {"inference_ids": ids[5:8], "field_name": "color", "field_value": "blue"},
        {"inference_ids": ids[8:], "field_name": "color", "field_value": "amber"},
        {"inference_ids": ids[:1], "field_name": "Color", "field_value": "x"},
        {"inference_ids": ids[:3], "field_name": "size", "field_value": "L"},
    ])
    fields = {f["name"]: f for f in _fields(ws)}
    assert list(fields) == sorted(fields)
    assert fields["color"]["distinct_values"] == 3
    assert fields["color"]["inferences"] == 10
    assert fields["color"]["top_values"] == [
        {"value": "red", "count": 5}, {"value": "blue", "count": 3}, {"value": "amber", "count": 2}]
    assert fields["Color"]["top_values"] == [{"value": "x", "count": 1}]
    assert fields["size"] == {"name": "size", "distinct_values": 1, "inferences": 3,
                              "top_values": [{"value": "L", "count": 3}], "types": ["string"]}
    top1 = {f["name"]: f for f in _fields(ws, top=1)}
    assert top1["color"]["top_values"] == [{"value": "red", "count": 5}]
    assert top1["color"]["distinct_values"] == 3
    assert all(f["top_values"] == [] for f in _fields(ws, top=0))


def test_fields_listing_breaks_ties_by_value(ws: Workspace) -> None:
    attach(ws, [{"inference_ids": [f"t{n}"], "field_name": "k", "field_value": v}
                for n, v in enumerate(["b", "c", "a"])])
    (field,) = _fields(ws)
    assert [v["value"] for v in field["top_values"]] == ["a", "b", "c"]


@pytest.mark.parametrize("top", ["-1", "x", "1001", "1.5", "", "²", "٣"])
def test_fields_listing_rejects_bad_top(ws: Workspace, top: str) -> None:
    reply = ws.client.get(f"{ws.api}/metadata/fields", params={"top": top})
    assert reply.status_code == 400
    assert reply.json()["error"] == "Invalid request"


def test_gzipped_metadata_call(ws: Workspace) -> None:
    import gzip

    body = gzip.compress(json.dumps({"api_key": ws.key, "data": [
        {"inference_ids": [f"z{n}" for n in range(100)], "field_name": "zone", "field_value": "z"}]}).encode())
    reply = ws.client.post(f"/{ws.slug}/inference-stats/metadata", content=body,
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    (zone,) = _fields(ws)
    assert (zone["name"], zone["inferences"]) == ("zone", 100)
