"""Typed metadata over the API: numbers and booleans come back as sent, and the comparison
terms (`meta.<field>[gt]=...`) select the same inferences in the list, stats, groups and the
CSV export; a misspelt operator is a 400 that changes nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.conftest import EVER, Workspace, attach, ingest, item, list_all, stats

# inference id -> (line, temperature as sent, ok)
SENT: dict[str, tuple[str, Any, Any]] = {
    "cold": ("1", -4.5, True), "warm": ("1", 120, True), "hot": ("2", 151.5, False),
    "text": ("2", "160", True), "odd": ("2", "n/a", "maybe"),
}


@pytest.fixture
def typed(ws: Workspace) -> Workspace:
    ingest(ws, [item(i, metadata={"line": line, "temperature": t}, time_s=0.01 * (n + 1))
                for n, (i, (line, t, _)) in enumerate(SENT.items())] + [item("none")])
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
