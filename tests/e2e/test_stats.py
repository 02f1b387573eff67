"""Stats: totals and series checked against figures worked out by hand on small known data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferwatch.store import sketch
from tests.conftest import Workspace, attach, box, ingest, item, open_workspace, stats
from tests.server import InProcess

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}


def _ts(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@pytest.fixture(scope="module")
def known(app_server: InProcess) -> Iterator[Workspace]:
    """Six inferences over three hours; shared by the read-only tests of this module."""
    with open_workspace(app_server) as ws:
        _fill_known(ws)
        yield ws


def _fill_known(ws: Workspace) -> None:
    ingest(ws, [
        item("s0", "A", device_id="d1", timestamp=_ts(10), time_s=0.01, predictions=[box("cat", 0.9), box("dog", 0.5)]),
        item("s1", "A", device_id="d2", timestamp=_ts(20), time_s=0.02, predictions=[box("cat", 0.7)]),
        item("s2", "B", device_id="d1", timestamp=_ts(70), time_s=0.03),
        item("s3", "B", timestamp=_ts(80), time_s=0.04, predictions=[box("dog", 0.4)]),
        item("s4", "A", device_id="d1", timestamp=_ts(130), time_s=0.10,
             predictions=[box("cat", 0.6), box("cat", 0.8), box("dog", 0.2)]),
        item("s5", "C", device_id="d3", timestamp=_ts(140), predictions=[box("dog", 1.0)]),
    ])
    attach(ws, [
        {"inference_ids": ["s0", "s2"], "field_name": "site", "field_value": "s1"},
        {"inference_ids": ["s1"], "field_name": "site", "field_value": "s2"},
    ])


def _series(ws: Workspace, **params: Any) -> list[tuple[str, Any, int, int, Any, Any]]:
    body = stats(ws, **{**DAY, "bucket": "1h", **params})
    return [(p["time"][11:16], p["group"], p["count"], p["predictions"],
             None if p["avg_inference_time"] is None else round(p["avg_inference_time"], 6),
             None if p["avg_confidence"] is None else round(p["avg_confidence"], 6)) for p in body["series"]]


def test_totals(known: Workspace) -> None:
    totals = stats(known, **DAY)["totals"]
    assert totals["inferences"] == 6
    assert totals["predictions"] == 8
    assert totals["avg_confidence"] == pytest.approx(5.1 / 8)
    assert totals["avg_inference_time"] == pytest.approx(0.04)  # s5 has no time: left out
    assert totals["p50_inference_time"] == pytest.approx(0.03, rel=sketch.ALPHA)
    assert totals["p95_inference_time"] == pytest.approx(0.04 + 0.8 * 0.06, rel=sketch.ALPHA)
    assert totals["devices"] == 3
    assert totals["models"] == 3


def test_totals_of_an_empty_range(known: Workspace) -> None:
    totals = stats(known, **{"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"})["totals"]
    assert totals == {"inferences": 0, "predictions": 0, "avg_inference_time": None, "p50_inference_time": None,
                      "p95_inference_time": None, "avg_confidence": None, "devices": 0, "models": 0}


def test_percentiles_over_a_hundred_and_one_values(ws: Workspace) -> None:
    ingest(ws, [item(f"p{n}", timestamp=_ts(n), time_s=n / 1000) for n in range(101)])
    totals = stats(ws, **DAY)["totals"]
    assert totals["p50_inference_time"] == pytest.approx(0.050, rel=sketch.ALPHA)
    assert totals["p95_inference_time"] == pytest.approx(0.095, rel=sketch.ALPHA)
    assert totals["avg_inference_time"] == pytest.approx(0.050)


def test_series_by_hour(known: Workspace) -> None:
    assert _series(known) == [
        ("00:00", None, 2, 3, 0.015, 0.7),
        ("01:00", None, 2, 1, 0.035, 0.4),
        ("02:00", None, 2, 4, 0.1, 0.65),
    ]


def test_series_time_labels_are_bucket_starts(known: Workspace) -> None:
    body = stats(known, **DAY, bucket="1h")
    assert [p["time"] for p in body["series"]] == [
        "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]
    body = stats(known, **DAY, bucket="1d")
    assert [(p["time"], p["count"]) for p in body["series"]] == [("2026-01-01T00:00:00Z", 6)]
    body = stats(known, **DAY, bucket="15m")
    assert [(p["time"][11:16], p["count"]) for p in body["series"]] == [
        ("00:00", 1), ("00:15", 1), ("01:00", 1), ("01:15", 1), ("02:00", 1), ("02:15", 1)]


def test_group_by_model(known: Workspace) -> None:
    assert _series(known, group_by="model_id") == [
        ("00:00", "A", 2, 3, 0.015, 0.7),
        ("01:00", "B", 2, 1, 0.035, 0.4),
        ("02:00", "A", 1, 3, 0.1, round(1.6 / 3, 6)),
        ("02:00", "C", 1, 1, None, 1.0),
    ]


def test_group_by_device(known: Workspace) -> None:
    got = [(t, g, n) for t, g, n, *_ in _series(known, group_by="device_id")]
    assert got == [("00:00", "d1", 1), ("00:00", "d2", 1), ("01:00", "d1", 1), ("01:00", None, 1),
                   ("02:00", "d1", 1), ("02:00", "d3", 1)]


def test_group_by_class_counts_predictions(known: Workspace) -> None:
    got = [(t, g, n, c) for t, g, n, _, _, c in _series(known, group_by="class")]
    assert got == [("00:00", "cat", 2, 0.8), ("00:00", "dog", 1, 0.5), ("01:00", "dog", 1, 0.4),
                   ("02:00", "cat", 2, 0.7), ("02:00", "dog", 2, 0.6)]


def test_group_by_class_with_prediction_filters(known: Workspace) -> None:
    got = [(t, g, n) for t, g, n, *_ in _series(known, group_by="class", **{"class": "cat"})]
    assert got == [("00:00", "cat", 2), ("02:00", "cat", 2)]
    got = [(t, g, n) for t, g, n, *_ in _series(known, group_by="class", min_confidence="0.6")]
    assert got == [("00:00", "cat", 2), ("02:00", "cat", 2), ("02:00", "dog", 1)]


def test_group_by_metadata_field(known: Workspace) -> None:
    got = [(t, g, n) for t, g, n, *_ in _series(known, group_by="meta.site")]
    assert got == [("00:00", "s1", 1), ("00:00", "s2", 1), ("01:00", "s1", 1), ("01:00", None, 1),
                   ("02:00", None, 2)]
    # Field names are case-sensitive here as everywhere.
    assert {g for _, g, *_ in _series(known, group_by="meta.Site")} == {None}


def test_group_by_metadata_with_a_metadata_filter(known: Workspace) -> None:
    got = [(t, g, n) for t, g, n, *_ in _series(known, group_by="meta.site", **{"meta.site": "s1"})]
    assert got == [("00:00", "s1", 1), ("01:00", "s1", 1)]
    assert stats(known, **DAY, group_by="meta.site", **{"meta.site": "s1"})["totals"]["inferences"] == 2


@pytest.mark.parametrize(("params", "count", "predictions"), [
    ({"model_id": "A"}, 3, 6),
    ({"model_id": ["B", "C"]}, 3, 2),
    ({"device_id": "d1"}, 3, 5),
    ({"class": "cat"}, 3, None),
    ({"min_confidence": "0.95"}, 1, 1),
    ({"meta.site": "s1"}, 2, 2),
    ({"from": _ts(70)}, 4, 5),
    ({"from": _ts(70), "to": _ts(130)}, 2, 1),  # `to` is exclusive
    ({"from": str(int((T0 + timedelta(minutes=80)).timestamp()))}, 3, 5),
])
def test_totals_use_the_list_filters(known: Workspace, params: dict[str, Any], count: int,
                                     predictions: int | None) -> None:
    totals = stats(known, **{**DAY, **params})["totals"]
    assert totals["inferences"] == count
    if predictions is not None:
        assert totals["predictions"] == predictions


def test_time_windows_use_the_inferences_own_time(ws: Workspace) -> None:
    ingest(ws, [item("old", timestamp=_ts(0)), item("fresh")])
    now = ws.client.get(f"{ws.api}/stats").json()  # default: the last 24 h
    assert now["totals"]["inferences"] == 1
    assert sum(p["count"] for p in now["series"]) == 1
    assert stats(ws, **DAY)["totals"]["inferences"] == 1
    assert stats(ws)["totals"]["inferences"] == 2


def test_default_window_is_the_last_day(ws: Workspace) -> None:
    body = ws.client.get(f"{ws.api}/stats").json()
    start = datetime.fromisoformat(body["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(body["to"].replace("Z", "+00:00"))
    assert end - start == timedelta(hours=24)
    assert body["bucket"] == "15m"
    assert body["group_by"] is None
    only_to = ws.client.get(f"{ws.api}/stats", params={"to": "2026-01-02T00:00:00Z"}).json()
    assert (only_to["from"], only_to["to"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")


@pytest.mark.parametrize(("span", "bucket"), [
    (timedelta(minutes=30), "1m"),
    (timedelta(hours=3), "1m"),
    (timedelta(hours=4), "5m"),
    (timedelta(hours=24), "15m"),
    (timedelta(days=7), "1h"),
    (timedelta(days=30), "6h"),
    (timedelta(days=90), "1d"),
    (timedelta(days=3650), "1d"),
])
def test_auto_bucket_follows_the_range(known: Workspace, span: timedelta, bucket: str) -> None:
    params = {"from": T0.isoformat(), "to": (T0 + span).isoformat()}
    assert stats(known, **params)["bucket"] == bucket
    assert stats(known, **params, bucket="auto")["bucket"] == bucket


BAD: list[dict[str, Any]] = [
    {"bucket": "2m"},
    {"bucket": "1m", "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},  # too many points
    {"group_by": "colour"},
    {"group_by": "meta."},
    {"group_by": "inference_id"},
    {"min_confidence": "2"},
    {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    {"nope": "1"},
    {"limit": "10"},  # a list parameter, not a stats one
    {"to": "9999-12-31T23:59:59-01:00"},
    {"from": "-70000000000"},
]


@pytest.mark.parametrize("params", BAD, ids=[str(p) for p in BAD])
def test_bad_stats_queries_are_400(known: Workspace, params: dict[str, Any]) -> None:
    reply = known.client.get(f"{known.api}/stats", params={**DAY, **params})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "Invalid request"


def test_a_window_ending_at_the_start_of_the_calendar(known: Workspace) -> None:
    reply = known.client.get(f"{known.api}/stats", params={"to": "0001-01-01T12:00:00Z"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["from"] == "0001-01-01T00:00:00Z"
    assert reply.json()["totals"]["inferences"] == 0
    body = stats(known, **{"from": "0001-01-01", "to": "9999-12-31"})
    assert body["bucket"] == "1d"
    assert body["totals"]["inferences"] == 6


def test_duplicates_do_not_count_twice_in_stats(ws: Workspace) -> None:
    batch = [item(f"x{n}", timestamp=_ts(n), predictions=[box("a", 0.5)]) for n in range(10)]
    ingest(ws, batch)
    ingest(ws, batch + batch)
    body = stats(ws, **DAY)
    assert (body["totals"]["inferences"], body["totals"]["predictions"]) == (10, 10)
    assert sum(p["count"] for p in body["series"]) == 10


def test_classification_counts_its_verdict(ws: Workspace) -> None:
    ingest(ws, [item("c1", timestamp=_ts(1)) | {"result": {"top": "blue", "confidence": 0.8, "predictions": [
        {"class": "blue", "class_id": 0, "confidence": 0.8}, {"class": "red", "class_id": 1, "confidence": 0.2}]}}])
    body = stats(ws, **DAY, group_by="class")
    assert body["totals"]["predictions"] == 1
    assert body["totals"]["avg_confidence"] == pytest.approx(0.8)
    assert [(p["group"], p["count"]) for p in body["series"]] == [("blue", 1)]
