"""The inference list: every filter, newest-first order, and keyset pagination without
duplicates or gaps; and the single-inference route."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Workspace, attach, box, ingest, item, list_all, open_workspace, pages
from tests.server import InProcess

T0 = 1767225600  # 2026-01-01T00:00:00Z


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["inference_id"] for r in rows]


@pytest.fixture(scope="module")
def small(app_server: InProcess) -> Iterator[Workspace]:
    """Five inferences a minute apart, with models, devices, tags, predictions and metadata.
    Shared by the read-only tests of this module."""
    with open_workspace(app_server) as ws:
        _fill_small(ws)
        yield ws


def _fill_small(ws: Workspace) -> None:
    ingest(ws, [
        item("i0", "A", device_id="d1", tags=["x"], timestamp=T0, predictions=[box("cat", 0.9)]),
        item("i1", "A", device_id="d2", tags=["x", "y"], timestamp=T0 + 60,
             predictions=[box("dog", 0.3), box("cat", 0.2)]),
        item("i2", "B", device_id="d1", timestamp=T0 + 120, predictions=[box("dog", 0.8)]),
        item("i3", "B", tags=["y"], timestamp=T0 + 180),
        item("i4", "C", device_id="d3", timestamp=T0 + 240, predictions=[box("cat", 0.5), box("dog", 0.95)]),
    ])
    attach(ws, [
        {"inference_ids": ["i0", "i1", "i4"], "field_name": "site", "field_value": "s1"},
        {"inference_ids": ["i2"], "field_name": "site", "field_value": "s2"},
        {"inference_ids": ["i0", "i2"], "field_name": "line", "field_value": "1"},
        {"inference_ids": ["i1"], "field_name": "line", "field_value": "2"},
    ])


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["i4", "i3", "i2", "i1", "i0"]),
    ({"model_id": "A"}, ["i1", "i0"]),
    ({"model_id": ["A", "C"]}, ["i4", "i1", "i0"]),
    ({"model_id": "nope"}, []),
    ({"device_id": "d1"}, ["i2", "i0"]),
    ({"device_id": ["d2", "d3"]}, ["i4", "i1"]),
    ({"class": "cat"}, ["i4", "i1", "i0"]),
    ({"class": ["cat", "dog"]}, ["i4", "i2", "i1", "i0"]),
    ({"class": "Cat"}, []),
    # Class and confidence must hold for the same prediction.
    ({"class": "cat", "min_confidence": "0.6"}, ["i0"]),
    ({"class": "dog", "max_confidence": "0.5"}, ["i1"]),
    ({"min_confidence": "0.85"}, ["i4", "i0"]),
    ({"max_confidence": "0.25"}, ["i1"]),
    ({"min_confidence": "0.25", "max_confidence": "0.35"}, ["i1"]),
    ({"min_confidence": "0"}, ["i4", "i2", "i1", "i0"]),  # i3 has no prediction to match
    ({"tag": "y"}, ["i3", "i1"]),
    ({"tag": ["x", "y"]}, ["i3", "i1", "i0"]),
    ({"meta.site": "s1"}, ["i4", "i1", "i0"]),
    ({"meta.site": "s1", "meta.line": "1"}, ["i0"]),
    ({"meta.line": ["1", "2"]}, ["i2", "i1", "i0"]),
    ({"meta.site": "s1", "meta.line": "3"}, []),
    ({"meta.nope": "s1"}, []),
    ({"from": str(T0 + 60)}, ["i4", "i3", "i2", "i1"]),
    ({"to": str(T0 + 120)}, ["i1", "i0"]),  # `to` is exclusive
    ({"from": "2026-01-01T00:01:00Z", "to": "2026-01-01T00:03:00Z"}, ["i2", "i1"]),
    ({"from": "2026-01-01T02:01:00+02:00", "to": "2026-01-01T00:03:00"}, ["i2", "i1"]),
    ({"from": str(T0 + 60.5)}, ["i4", "i3", "i2"]),
    ({"model_id": "A", "meta.line": "2"}, ["i1"]),
    ({"model_id": "B", "device_id": "d1", "meta.site": "s2", "class": "dog", "from": str(T0)}, ["i2"]),
    ({"tag": "x", "class": "dog", "min_confidence": "0.3", "max_confidence": "0.3"}, ["i1"]),
]


@pytest.mark.parametrize(("params", "expected"), CASES, ids=[str(p) for p, _ in CASES])
def test_filters(small: Workspace, params: dict[str, Any], expected: list[str]) -> None:
    assert _ids(list_all(small, **params)) == expected


def test_rows_carry_predictions_and_metadata(small: Workspace) -> None:
    rows = {r["inference_id"]: r for r in list_all(small)}
    assert rows["i1"]["metadata"] == {"site": "s1", "line": "2"}
    assert rows["i3"]["metadata"] == {}
    assert [(p["class"], p["confidence"]) for p in rows["i1"]["predictions"]] == [("dog", 0.3), ("cat", 0.2)]
    assert rows["i3"]["predictions"] == []
    assert rows["i0"]["timestamp"] == "2026-01-01T00:00:00Z"
    assert (rows["i0"]["model_id"], rows["i0"]["device_id"], rows["i0"]["tags"]) == ("A", "d1", ["x"])
    assert rows["i3"]["device_id"] is None


def _cursor(*parts: object) -> str:
    """A cursor made by hand in the server's encoding (base64url of a JSON list, unpadded)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


BAD_QUERIES: list[dict[str, Any]] = [
    {"bogus": "1"},
    {"model": "A"},  # a misspelt filter never silently widens a query
    {"from": "yesterday"},
    {"to": "2026-13-01"},
    {"from": str(T0 + 60), "to": str(T0)},
    {"from": [str(T0), str(T0 + 1)]},
    {"from": "1e20"},
    {"min_confidence": "high"},
    {"min_confidence": "1.5"},
    {"max_confidence": "-0.1"},
    {"max_confidence": "nan"},
    {"limit": "0"},
    {"limit": "1001"},
    {"limit": "ten"},
    {"cursor": "not-a-cursor"},
    {"cursor": "WyJ4Il0"},  # valid base64 of a JSON list that is not a cursor
    {"meta.": "x"},
    # Times that parse but fall off the calendar once converted to UTC: 400, not 500.
    {"from": "9999-12-31T23:59:59-01:00"},
    {"to": "0001-01-01T00:00:00+01:00"},
    {"from": "-70000000000"},
    # Cursors that decode but point outside any time a server could give out.
    {"cursor": _cursor(10**18, "a", 0)},
    {"cursor": _cursor(-(10**18), "a", 0)},
    {"cursor": _cursor(0, "a", -1)},
]


@pytest.mark.parametrize("params", BAD_QUERIES, ids=[str(p) for p in BAD_QUERIES])
def test_bad_queries_are_400(small: Workspace, params: dict[str, Any]) -> None:
    reply = small.client.get(f"{small.api}/inferences", params=params)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "Invalid request"
    assert reply.json()["detail"]


def test_the_calendar_edges_are_valid_times(small: Workspace) -> None:
    assert _ids(list_all(small, **{"from": "0001-01-01", "to": "9999-12-31T23:59:59Z"})) == [
        "i4", "i3", "i2", "i1", "i0"]
    assert list_all(small, **{"to": "0001-01-01T00:00:00Z"}) == []


def _expected_order(rows: list[tuple[int, str, int]]) -> list[tuple[str, int]]:
    return [(i, n) for _, i, n in sorted(rows, reverse=True)]




def test_pagination_over_hundreds_of_rows_has_no_duplicates_or_gaps(ws: Workspace) -> None:
    # 300 images over 50 distinct seconds: many share a timestamp; some ids have two images.
    made = []
    items = []
    for n in range(250):
        ts = T0 + n % 50
        items.append(item(f"p{n:03d}", timestamp=ts, predictions=[box("even" if n % 2 == 0 else "odd", 0.5)]))
        made.append((ts * 1_000_000, f"p{n:03d}", 0))
        if n % 5 == 0:
            items.append(item(f"p{n:03d}", timestamp=ts, image_index=1, predictions=[box("even", 0.5)]))
            made.append((ts * 1_000_000, f"p{n:03d}", 1))
    ingest(ws, items)
    found = pages(ws, 7)
    assert len(found) == -(-len(made) // 7)
    assert all(len(p) == 7 for p in found[:-1])
    got = [(r["inference_id"], r["image_index"]) for page in found for r in page]
    assert got == _expected_order(made)
    # Pagination over a filtered set: every "even" image (n even, plus each image 1).
    even = pages(ws, 9, **{"class": "even"})
    got = [(r["inference_id"], r["image_index"]) for page in even for r in page]
    assert got == _expected_order([m for m in made if int(m[1][1:]) % 2 == 0 or m[2] == 1])


def test_pagination_with_identical_timestamps(ws: Workspace) -> None:
    ingest(ws, [item(f"same-{n:03d}", timestamp=T0) for n in range(200)])
    found = pages(ws, 13)
    got = [r["inference_id"] for page in found for r in page]
    assert len(got) == len(set(got)) == 200
    assert got == sorted(got, reverse=True)


def test_pages_over_decades_of_sparse_rows_miss_nothing(ws: Workspace) -> None:
    """The list looks for a page in a recent window first and widens it: rows minutes, days,
    years and decades apart, filtered or not, still come out whole and in order."""
    offsets = ([60 * n for n in range(10)] + [86400 + 3600 * n for n in range(5)] + [30 * 86400 + n for n in range(5)]
               + [3 * 365 * 86400 + n for n in range(3)] + [25 * 365 * 86400, 26 * 365 * 86400])
    stamps = [T0 - off for off in offsets] + [T0 + 60 * 365 * 86400]  # and one far in the future
    ingest(ws, [item(f"y{n:02d}", timestamp=ts) for n, ts in enumerate(stamps)])
    marked = [f"y{n:02d}" for n in range(0, len(stamps), 3)]
    attach(ws, [{"inference_ids": marked, "field_name": "pick", "field_value": "yes"}])
    newest_first = [f"y{n:02d}" for _, n in sorted(((ts, n) for n, ts in enumerate(stamps)), reverse=True)]
    for limit in (1, 4, 50):
        assert _ids([r for page in pages(ws, limit) for r in page]) == newest_first
        assert _ids([r for page in pages(ws, limit, **{"meta.pick": "yes"}) for r in page]) == [
            i for i in newest_first if i in marked]
    window = {"from": T0 - 40 * 86400, "to": T0 - 30}
    assert _ids(list_all(ws, limit=3, **window)) == [
        f"y{n:02d}" for _, n in sorted(((ts, n) for n, ts in enumerate(stamps)
                                        if window["from"] <= ts < window["to"]), reverse=True)]
    assert list_all(ws, **{"meta.pick": "no"}) == []


def test_a_cursor_at_the_first_year_is_an_empty_last_page(small: Workspace) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps([-62_135_596_800_000_000, "", 0]).encode()).decode().rstrip("=")
    reply = small.client.get(f"{small.api}/inferences", params={"cursor": cursor})
    assert reply.status_code == 200
    assert reply.json() == {"inferences": [], "next_cursor": None}


def test_last_full_page_has_no_next_cursor(ws: Workspace) -> None:
    ingest(ws, [item(f"f{n:02d}", timestamp=T0 + n) for n in range(20)])
    found = pages(ws, 10)
    assert [len(p) for p in found] == [10, 10]


def test_default_page_size_is_50(ws: Workspace) -> None:
    ingest(ws, [item(f"d{n:02d}", timestamp=T0 + n) for n in range(60)])
    body = ws.client.get(f"{ws.api}/inferences").json()
    assert len(body["inferences"]) == 50
    assert body["next_cursor"]


def test_cursor_is_stable_when_newer_rows_arrive(ws: Workspace) -> None:
    ingest(ws, [item(f"s{n:02d}", timestamp=T0 + n) for n in range(30)])
    first = ws.client.get(f"{ws.api}/inferences", params={"limit": 10}).json()
    ingest(ws, [item("newest", timestamp=T0 + 1000), item("s10b", timestamp=T0 + 10)])
    rest = list_all(ws, cursor=first["next_cursor"])
    assert _ids(first["inferences"]) == [f"s{n:02d}" for n in range(29, 19, -1)]
    assert _ids(rest) == [f"s{n:02d}" for n in range(19, 10, -1)] + ["s10b"] + [f"s{n:02d}" for n in range(10, -1, -1)]


def test_empty_workspace_lists_nothing(ws: Workspace) -> None:
    assert ws.client.get(f"{ws.api}/inferences").json() == {"inferences": [], "next_cursor": None}


def test_get_one_inference(small: Workspace) -> None:
    reply = small.client.get(f"{small.api}/inferences/i4")
    assert reply.status_code == 200
    row = reply.json()
    assert row["inference_id"] == "i4"
    assert row["metadata"] == {"site": "s1"}
    assert [p["class"] for p in row["predictions"]] == ["cat", "dog"]
    assert row["timestamp"] == "2026-01-01T00:04:00Z"


def test_get_finds_every_image_however_many_and_whichever(ws: Workspace) -> None:
    """One id's images are looked up by their identity keys first (images 0-15); more images, or
    only images past those, are still all found."""
    ingest(ws, [item("many", image_index=n, timestamp=T0 + n) for n in range(18)]
           + [item("late", image_index=20, timestamp=T0), item("few", image_index=3, timestamp=T0)]
           + [item("few", image_index=0, timestamp=T0)])
    many = ws.client.get(f"{ws.api}/inferences/many").json()
    assert many["image_index"] == 0 and many["image_count"] == 18
    assert ws.client.get(f"{ws.api}/inferences/many", params={"image_index": 17}).json()["timestamp"] == (
        "2026-01-01T00:00:17Z")
    late = ws.client.get(f"{ws.api}/inferences/late")
    assert late.status_code == 200 and late.json()["image_index"] == 20 and late.json()["image_count"] == 1
    few = ws.client.get(f"{ws.api}/inferences/few").json()
    assert few["image_count"] == 2
    assert ws.client.get(f"{ws.api}/inferences/few", params={"image_index": 3}).status_code == 200


def test_get_unknown_inference_is_404(small: Workspace) -> None:
    reply = small.client.get(f"{small.api}/inferences/unknown-id")
    assert reply.status_code == 404
    assert reply.json()["error"]


def test_ids_with_slashes_and_spaces(ws: Workspace) -> None:
    ingest(ws, [item("cam/2 frame 17")])
    attach(ws, [{"inference_ids": ["cam/2 frame 17"], "field_name": "f", "field_value": "v"}])
    reply = ws.client.get(f"{ws.api}/inferences/cam%2F2%20frame%2017")
    assert reply.status_code == 200, reply.text
    assert reply.json()["inference_id"] == "cam/2 frame 17"
    assert reply.json()["metadata"] == {"f": "v"}
    reply = ws.client.get(f"{ws.api}/inferences/cam/2 frame 17")
    assert reply.status_code == 200
