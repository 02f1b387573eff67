"""Typed metadata over the API: numbers and booleans come back as sent, and the comparison
terms (`meta.<field>[gt]=...`) select the same inferences in the list, stats, groups and the
CSV export; a misspelt operator is a 400 that changes nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.conftest import EVER, Workspace, attach, ingest, item, list_all, stats

T0 = 1_780_000_000  # 2026-05-28T20:26:40Z: every inference in one hour and one day
DAY = {"from": "2026-05-28T00:00:00Z", "to": "2026-05-29T00:00:00Z"}
# inference id -> (line, temperature as sent, ok)
SENT: dict[str, tuple[str, Any, Any]] = {
    "cold": ("1", -4.5, True), "warm": ("1", 120, True), "hot": ("2", 151.5, False),
    "text": ("2", "160", True), "odd": ("2", "n/a", "maybe"),
}


@pytest.fixture
def typed(ws: Workspace) -> Workspace:
    ingest(ws, [item(i, metadata={"line": line, "temperature": t}, time_s=0.01 * (n + 1), timestamp=T0 + n)
                for n, (i, (line, t, _)) in enumerate(SENT.items())] + [item("none", timestamp=T0)])
    attach(ws, [{"inference_ids": [i], "field_name": "ok", "field_value": ok} for i, (_, _, ok) in SENT.items()])
    return ws


def _ids(ws: Workspace, **params: Any) -> set[str]:
    return {r["inference_id"] for r in list_all(ws, **params)}


def test_values_come_back_as_sent(typed: Workspace) -> None:
    rows = {r["inference_id"]: r["metadata"] for r in list_all(typed)}
    assert rows["hot"] == {"line": "2", "temperature": 151.5, "ok": False}
    assert rows["warm"]["temperature"] == 120 and rows["text"]["temperature"] == "160"
    assert typed.client.get(f"{typed.api}/inferences/cold").json()["metadata"]["ok"] is True
    fields = {f["name"]: f["types"] for f in typed.client.get(f"{typed.api}/metadata/fields").json()["fields"]}
    assert fields == {"line": ["string"], "ok": ["boolean", "string"], "temperature": ["number", "string"]}


@pytest.mark.parametrize(("params", "expected"), [
    ({"meta.temperature[gt]": "150"}, {"hot", "text"}),
    ({"meta.temperature[gte]": "-4.5", "meta.temperature[lt]": "150"}, {"cold", "warm"}),
    ({"meta.temperature[lte]": "0"}, {"cold"}),
    ({"meta.temperature[eq]": "120"}, {"warm"}),
    ({"meta.temperature[neq]": "120"}, {"cold", "hot", "text", "odd"}),
    ({"meta.ok[eq]": "true"}, {"cold", "warm", "text"}),
    ({"meta.ok[neq]": "true"}, {"hot", "odd"}),
    ({"meta.ok": "false"}, {"hot"}),
    ({"meta.line": "2", "meta.temperature[gt]": "155"}, {"text"}),
])
def test_comparisons_select_in_list_stats_groups_and_export(typed: Workspace, params: dict[str, str],
                                                             expected: set[str]) -> None:
    assert _ids(typed, **params) == expected
    assert stats(typed, **params)["totals"]["inferences"] == len(expected)
    groups = typed.client.get(f"{typed.api}/groups", params={**EVER, **params, "group_by": "model_id"}).json()
    assert sum(g["inferences"] for g in groups["groups"]) == len(expected)
    exported = typed.client.get(f"{typed.api}/export.csv", params={**params, "columns": "meta.temperature"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["inference_id"] for r in rows} == expected
    assert all(r["meta.temperature"] == {"cold": "-4.5", "warm": "120", "hot": "151.5", "text": "160",
                                         "odd": "n/a"}[r["inference_id"]] for r in rows)


@pytest.mark.parametrize(("params", "says"), [
    ({"meta.temperature[above]": "1"}, "unknown operator"),
    ({"meta.temperature[gt]": "warm"}, "expected a number"),
    ({"meta.temperature[lt]": "NaN"}, "expected a number"),
    ({"meta.[gt]": "1"}, "no field"),
])
def test_a_bad_comparison_is_a_400_naming_it(typed: Workspace, params: dict[str, str], says: str) -> None:
    for route in ("/inferences", "/stats", "/export.csv", "/groups"):
        reply = typed.client.get(f"{typed.api}{route}", params={**params, "group_by": "model_id"}
                                 if route == "/groups" else params)
        assert reply.status_code == 400, (route, reply.text)
        body = reply.json()
        assert set(body) == {"error", "detail"} and says in str(body["detail"]), body
    assert len(list_all(typed)) == len(SENT) + 1


def _numeric(count: int, avg: float | None, lo: float | None, hi: float | None) -> dict[str, Any]:
    return {"count": count, "avg": avg, "min": lo, "max": hi}


LINE_1, LINE_2 = _numeric(2, 57.75, -4.5, 120.0), _numeric(2, 155.75, 151.5, 160.0)


def test_numeric_figures_per_group_and_bucket(typed: Workspace) -> None:
    """The string "160" reads as a number and counts; "n/a" and the flags do not."""
    params = {**DAY, "numeric": "meta.temperature"}
    groups = typed.client.get(f"{typed.api}/groups", params={**params, "group_by": "meta.line"}).json()
    assert groups["numeric"] == {"field": "meta.temperature", **_numeric(4, 106.75, -4.5, 160.0)}
    assert {g["value"]: g["numeric"] for g in groups["groups"]} == {
        "1": LINE_1, "2": LINE_2, None: _numeric(0, None, None, None)}
    for bucket in ("1h", "1d"):
        found = stats(typed, **params, bucket=bucket, group_by="meta.line")
        assert found["numeric"] == groups["numeric"]
        assert {p["group"]: p["numeric"] for p in found["series"] if p["count"]} == {
            "1": LINE_1, "2": LINE_2, None: _numeric(0, None, None, None)}
    by_model = stats(typed, **params, bucket="1d", group_by="model_id")
    assert [(p["group"], p["numeric"]) for p in by_model["series"]] == [("m/1", _numeric(4, 106.75, -4.5, 160.0))]
    # With filters: the figures are the filtered inferences'.
    hot = stats(typed, **params, bucket="1d", **{"meta.temperature[gt]": "130"})
    assert hot["numeric"] == {"field": "meta.temperature", **LINE_2}
    assert stats(typed, **params, bucket="1d")["series"][0]["numeric"] == _numeric(4, 106.75, -4.5, 160.0)
    # A field without numbers has none.
    assert stats(typed, **DAY, numeric="meta.ok")["numeric"] == {"field": "meta.ok", **_numeric(0, None, None, None)}


@pytest.mark.parametrize("params", [
    {"numeric": "temperature"}, {"numeric": "meta."}, {"numeric": "model_id"},
    {"numeric": "meta.temperature", "group_by": "class"},
])
def test_a_bad_numeric_option_is_a_400(typed: Workspace, params: dict[str, str]) -> None:
    reply = typed.client.get(f"{typed.api}/stats", params=params)
    assert reply.status_code == 400 and set(reply.json()) == {"error", "detail"}
    both = typed.client.get(f"{typed.api}/stats", params=[("numeric", "meta.a"), ("numeric", "meta.b")])
    assert both.status_code == 400
