"""Hand-picked hostile bodies the other ingest tests do not cover: deep nesting, 10 MB strings, NUL
bytes and invalid UTF-8, non-UUID ids at and past the documented length, field names full of SQL,
HTML and control characters. Each is answered with a clear 4xx (or stored verbatim where valid),
never a 5xx, and a refused one writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Workspace, field_names, ingest, item, list_all, total


def _post(ws: Workspace, body: bytes, content_type: str = "application/json") -> Any:
    return ws.client.post(f"{ws.api}/inferences", content=body, headers={"Content-Type": content_type})


def _refused(ws: Workspace, reply: Any, status: int = 400) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]
    assert total(ws) == 0
    assert field_names(ws) == []


@pytest.mark.parametrize("where", ["result", "metadata", "extra field", "top level"])
def test_deeply_nested_json_is_400(ws: Workspace, where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    one = {"model_id": "m", "inference_id": "deep", "result": {}}
    text = json.dumps({"inferences": [one]})
    if where == "result":
        text = text.replace('"result": {}', f'"result": {{"predictions": [], "junk": {deep}}}')
    elif where == "metadata":
        text = text.replace('"result": {}', f'"result": {{}}, "metadata": {{"f": {deep}}}')
    elif where == "extra field":
        text = text.replace('"result": {}', f'"result": {{}}, "unknown": {deep}')
    else:
        text = deep
    reply = _post(ws, text.encode())
    assert reply.status_code in (400, 413), reply.text
    _refused(ws, reply, reply.status_code)


@pytest.mark.parametrize("field", ["inference_id", "model_id", "device_id", "tag", "metadata value",
                                   "metadata name", "class"])
def test_a_10_mb_string_is_refused(ws: Workspace, field: str) -> None:
    huge = "x" * (10 * 1024 * 1024)
    bad = item("ok")
    if field == "tag":
        bad["tags"] = [huge]
    elif field == "metadata value":
        bad["metadata"] = {"f": huge}
    elif field == "metadata name":
        bad["metadata"] = {huge: "v"}
    elif field == "class":
        bad["result"] = {"predictions": [{"class": huge, "confidence": 0.5}]}
    else:
        bad[field] = huge
    _refused(ws, ws.client.post(f"{ws.api}/inferences", json={"inferences": [bad]}))


def test_a_10_mb_metadata_value_through_the_roboflow_route_is_refused(ws: Workspace) -> None:
    reply = ws.client.post(f"/{ws.slug}/inference-stats/metadata", json={"data": [
        {"inference_ids": ["a"], "field_name": "f", "field_value": "v" * (10 * 1024 * 1024)}]})
    _refused(ws, reply)


@pytest.mark.parametrize("body", [
    b'{"inferences": [{"model_id": "m\xff\xfe", "result": {}}]}',  # invalid UTF-8 in a string
    b'{"inferences": [{"model_id": "m", "result": {}}]}\xc3',  # a truncated sequence at the end
    b'\xef\xbb\xbf\xff{"inferences": []}',
    b'{"inferences": [{"model_id": "m", "inference_id": "a\\u0000b", "result": {}}]}',  # NUL, escaped
    b'{"inferences": [{"model_id": "m", "inference_id": "a\x00b", "result": {}}]}',  # NUL, raw
    b'{"inferences": [{"model_id": "m", "result": {}, "metadata": {"f": "v\\u0000"}}]}',
    b'{"inferences": [{"model_id": "m", "result": {}, "tags": ["\\ud800"]}]}',  # a lone surrogate
    b"\x00" * 1024,
])
def test_nul_bytes_and_invalid_utf8_are_400(ws: Workspace, body: bytes) -> None:
    _refused(ws, _post(ws, body))
    _refused(ws, _post(ws, body.replace(b'{"inferences": [', b"").replace(b"]}", b""), "application/x-ndjson"))


def test_nul_and_invalid_utf8_in_a_metadata_call_are_400(ws: Workspace) -> None:
    for body in (b'{"data": [{"inference_ids": ["a"], "field_name": "f\\u0000", "field_value": "v"}]}',
                 b'{"data": [{"inference_ids": ["a\xff"], "field_name": "f", "field_value": "v"}]}'):
        reply = ws.client.post(f"/{ws.slug}/inference-stats/metadata", content=body,
                               headers={"Content-Type": "application/json"})
        _refused(ws, reply)


def test_any_reasonable_string_id_up_to_256_characters_is_accepted(ws: Workspace) -> None:
    ids = ["a" * 256, "not-a-uuid", "42", "id with spaces", "ünïcödé-✓", "a/b/c", "'; DROP TABLE x; --",
           "<script>alert(1)</script>", "%00%2F"]
    ingest(ws, [item(i) for i in ids])
    assert sorted(r["inference_id"] for r in list_all(ws)) == sorted(ids)
    for i in ids:
        assert ws.client.get(f"{ws.api}/inferences/{i}").status_code in (200, 404)  # '%' in a path decodes
    assert ws.client.get(f"{ws.api}/inferences/{'a' * 256}").json()["inference_id"] == "a" * 256


def test_an_id_past_256_characters_is_400(ws: Workspace) -> None:
    for bad in ({**item("x"), "inference_id": "a" * 257}, item("x", device_id="a" * 257),
                item("x", tags=["a" * 257])):
        _refused(ws, ws.client.post(f"{ws.api}/inferences", json={"inferences": [bad]}))
    _refused(ws, ws.client.post(f"/{ws.slug}/inference-stats/metadata", json={"data": [
        {"inference_ids": ["a" * 257], "field_name": "f", "field_value": "v"}]}))


@pytest.mark.parametrize("name", ["'; DROP TABLE metadata; --", "<img src=x onerror=alert(1)>", "a\"b", "a'b",
                                  "field.with.dots", "meta.site", "ünïcödé", "SELECT", "--", "*"])
def test_field_names_with_sql_and_html_are_stored_verbatim_and_filterable(ws: Workspace, name: str) -> None:
    ingest(ws, [item("one", metadata={name: "v"}), item("two")])
    assert field_names(ws) == [name]
    assert [r["inference_id"] for r in list_all(ws, **{f"meta.{name}": "v"})] == ["one"]
    assert list_all(ws, **{f"meta.{name}": "other"}) == []


@pytest.mark.parametrize("name", ["a\nb", "a\tb", "a\rb", "\x1b[31mred", "a\x7fb", "a\x00b"])
def test_field_names_with_control_characters_are_400(ws: Workspace, name: str) -> None:
    _refused(ws, ws.client.post(f"{ws.api}/inferences", json={"inferences": [item("x", metadata={name: "v"})]}))
    _refused(ws, ws.client.post(f"/{ws.slug}/inference-stats/metadata", json={"data": [
        {"inference_ids": ["x"], "field_name": name, "field_value": "v"}]}))


@pytest.mark.parametrize("body", [
    {"inferences": "many"}, {"inferences": None}, {"inferences": [None]}, {"inferences": [[]]},
    {"inferences": [{"model_id": 7, "result": {}}]}, {"inferences": [{"model_id": "m", "result": []}]},
    {"inferences": [{"model_id": "m", "result": {"predictions": [None]}}]},
    {"inferences": [{"model_id": "m", "result": {}, "timestamp": True}]},
    {"inferences": [{"model_id": "m", "result": {}, "timestamp": [2026]}]},
    {"inferences": [{"model_id": "m", "result": {}, "timestamp": -1e300}]},
    {"inferences": [{"model_id": "m", "result": {}, "timestamp": 1e300}]},
    {"inferences": [{"model_id": "m", "result": {}, "timestamp": "0000-00-00T00:00:00Z"}]},
    {"inferences": [{"model_id": "m", "result": {}, "timestamp": "+275760-09-13T00:00:00Z"}]},
    {"inferences": [{"model_id": "m", "result": {"predictions": [{"class": "a", "confidence": "0.5"}]}}]},
    {"inferences": [{"model_id": "m", "result": {"predictions": [{"class": "a", "confidence": 2**70}]}}]},
    {"inferences": [{"model_id": "m", "result": {}, "image_index": 2**64}]},
])
def test_wrong_types_and_absurd_values_are_400(ws: Workspace, body: Any) -> None:
    _refused(ws, ws.client.post(f"{ws.api}/inferences", json=body))


def test_a_huge_array_of_ids_in_one_metadata_entry_is_413(ws: Workspace) -> None:
    reply = ws.client.post(f"/{ws.slug}/inference-stats/metadata", json={"data": [
        {"inference_ids": [str(n) for n in range(100_001)], "field_name": "f", "field_value": "v"}]})
    _refused(ws, reply, 413)
