"""SQL injection payloads against every filter of the list, stats and Roboflow stats routes.

Filters reach DuckDB only as bound parameters (store/duckdb/sql.py). Each payload must be
answered as the plain string it is: no rows (or exactly the row that holds that very string), or
400 for a parameter that must be a time or a number; never 500, and the data is intact afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import EVER, Workspace, attach, box, ingest, list_all, open_workspace, stats
from tests.server import InProcess

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "x'; DROP TABLE inferences; --",
    "x\"; DELETE FROM metadata; --",
    "') OR ('a'='a",
    "' UNION SELECT slug, key_hash FROM workspaces --",
    "1) OR (1=1",
    "*/ OR 1=1 /*",
    "%' OR inference_id LIKE '%",
    "$$ OR true $$",
    "?",
    "\\'; SELECT 1; --",
    "'; ATTACH '/tmp/evil.duckdb' AS evil; --",
    "'; COPY inferences TO '/tmp/leak.csv'; --",
    "x' AND (SELECT count(*) FROM workspaces) > 0 AND 'a'='a",
]
LIST_FILTERS = ["model_id", "device_id", "class", "tag"]
TIME_FILTERS = ["from", "to"]


@pytest.fixture(scope="module")
def target(app_server: InProcess) -> Iterator[Workspace]:
    """Three inferences with metadata, and one whose metadata value is itself an injection payload."""
    with open_workspace(app_server, "inj") as ws:
        ingest(ws, [
            {"model_id": "m/1", "inference_id": f"i{n}", "device_id": "cam", "tags": ["lineA"],
             "timestamp": 1_780_000_000 + n, "result": {"predictions": [box("scratch", 0.9)]}} for n in range(3)])
        attach(ws, [{"inference_ids": ["i0", "i1", "i2"], "field_name": "site", "field_value": "a"},
                    {"inference_ids": ["i2"], "field_name": "note", "field_value": PAYLOADS[0]}])
        yield ws


@pytest.fixture(scope="module")
def bystander(app_server: InProcess) -> Iterator[Workspace]:
    """Another workspace's data, which no payload may reach or change."""
    with open_workspace(app_server, "bystander") as ws:
        ingest(ws, [{"model_id": "m/1", "inference_id": "theirs", "timestamp": 1_780_000_000, "result": {}}])
        yield ws


def _intact(ws: Workspace, bystander: Workspace) -> None:
    assert sorted(r["inference_id"] for r in list_all(ws)) == ["i0", "i1", "i2"]
    assert {r["inference_id"]: r["metadata"] for r in list_all(ws)}["i2"] == {"site": "a", "note": PAYLOADS[0]}
    assert [r["inference_id"] for r in list_all(bystander)] == ["theirs"]


def _queries(name: str, payload: str) -> list[tuple[str, dict[str, Any]]]:
    """The routes that take this filter, with the payload in it."""
    return [
        ("inferences", {name: payload}),
        ("stats", {**EVER, name: payload}),
        ("stats", {**EVER, name: payload, "group_by": "meta.site"}),
    ]


@pytest.mark.parametrize("name", LIST_FILTERS)
def test_list_filters_treat_payloads_as_plain_strings(target: Workspace, bystander: Workspace, name: str) -> None:
    for payload in PAYLOADS:
        for route, params in _queries(name, payload):
            reply = target.client.get(f"{target.api}/{route}", params=params)
            assert reply.status_code == 200, (route, params, reply.text)
            body = reply.json()
            if route == "inferences":
                assert body["inferences"] == [], (params, body)
            else:
                assert body["totals"]["inferences"] == 0, (params, body)
    _intact(target, bystander)


def test_metadata_filters_match_only_the_exact_string(target: Workspace, bystander: Workspace) -> None:
    for payload in PAYLOADS:
        # As a value: only the inference that holds this very string.
        expected = ["i2"] if payload == PAYLOADS[0] else []
        assert [r["inference_id"] for r in list_all(target, **{"meta.note": payload})] == expected
        assert stats(target, **{"meta.note": payload})["totals"]["inferences"] == len(expected)
        # As a field name, in a filter and in a group-by.
        assert list_all(target, **{f"meta.{payload}": "a"}) == []
        grouped = stats(target, group_by=f"meta.{payload}")
        assert grouped["totals"]["inferences"] == 3
        assert {p["group"] for p in grouped["series"]} == {None}
    _intact(target, bystander)


@pytest.mark.parametrize("name", TIME_FILTERS)
def test_time_filters_refuse_payloads(target: Workspace, bystander: Workspace, name: str) -> None:
    for payload in PAYLOADS:
        for route in ("inferences", "stats"):
            reply = target.client.get(f"{target.api}/{route}", params={name: payload})
            assert reply.status_code == 400, (route, name, payload, reply.text)
            assert reply.json()["error"] == "Invalid request"
        for param in ("min_confidence", "max_confidence", "limit", "cursor"):
            reply = target.client.get(f"{target.api}/inferences", params={param: payload})
            assert reply.status_code == 400, (param, payload, reply.text)
    _intact(target, bystander)


def test_roboflow_stats_treat_payloads_as_plain_strings(target: Workspace, bystander: Workspace) -> None:
    route = f"/{target.slug}/inference-stats"
    window = {"startTime": "2026-05-01 00:00:00", "endTime": "2026-07-01 00:00:00"}
    whole = target.client.get(route, params=window)
    assert whole.status_code == 200 and whole.json()["num_inferences"] == 3
    for payload in PAYLOADS:
        reply = target.client.get(route, params={**window, "modelNames": payload})
        assert reply.status_code == 200, reply.text
        assert reply.json()["num_inferences"] == 0
        assert reply.json()["inference_stats"] == []
        for name in ("startTime", "endTime"):
            reply = target.client.get(route, params={**window, name: payload})
            assert reply.status_code == 400, (name, payload, reply.text)
    _intact(target, bystander)


def test_payloads_in_paths_are_plain_ids(target: Workspace, bystander: Workspace) -> None:
    for payload in PAYLOADS:
        reply = target.client.get(f"{target.api}/inferences/{payload}")
        assert reply.status_code == 404, (payload, reply.text)
        reply = target.client.get(f"/api/v1/{payload}/inferences")
        assert reply.status_code in (403, 404), (payload, reply.text)
    _intact(target, bystander)
