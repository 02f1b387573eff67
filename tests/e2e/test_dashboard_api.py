"""The JSON routes behind the dashboard's figures: totals against the previous equal period, models,
distributions, the comparison by a field, and the CSV export, on a real server over HTTP."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.conftest import Workspace, attach, box, ingest, item

WEEK = {"from": "2026-01-08T00:00:00Z", "to": "2026-01-15T00:00:00Z"}


def at(day: int, hour: int = 12) -> str:
    return f"2026-01-{day:02d}T{hour:02d}:00:00Z"


def get(ws: Workspace, path: str, **params: Any) -> Any:
    reply = ws.client.get(f"{ws.api}{path}", params={**WEEK, **params})
    assert reply.status_code == 200, reply.text
    return reply.json()


def seed(ws: Workspace) -> None:
    ingest(ws, [
        # This week: three of model a (two cameras), one of model b.
        item("a1", "a/1", predictions=[box("cat", 0.9), box("dog", 0.5)], time_s=0.1, timestamp=at(9),
             device_id="cam-1"),
        item("a2", "a/1", predictions=[box("cat", 0.7)], time_s=0.3, timestamp=at(10), device_id="cam-2"),
        item("a3", "a/1", predictions=[], time_s=0.2, timestamp=at(11), device_id="cam-2"),
        item("b1", "b/2", predictions=[box("dog", 1.0)], time_s=0.4, timestamp=at(12, 6)),
        # The week before: one.
        item("old", "a/1", predictions=[box("cat", 0.8)], time_s=0.1, timestamp=at(3), device_id="cam-1"),
    ])
    attach(ws, [
        {"inference_ids": ["a1", "a2"], "field_name": "plant", "field_value": "=HYPERLINK(\"x\")"},
        {"inference_ids": ["a3"], "field_name": "plant", "field_value": "-3"},
        {"inference_ids": ["a1"], "field_name": "line", "field_value": "7"},
    ])


def test_overview_compares_with_the_previous_equal_period(ws: Workspace) -> None:
    seed(ws)
    body = get(ws, "/overview")
    assert body["previous"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-01-08T00:00:00Z"}
    assert body["totals"]["inferences"] == 4
    assert body["previous_totals"]["inferences"] == 1
    assert body["change"]["inferences"] == 3.0
    assert body["totals"]["devices"] == 2
    assert abs(body["totals"]["avg_confidence"] - (0.9 + 0.5 + 0.7 + 1.0) / 4) < 1e-9
    # Nothing before: no change to report rather than a division by zero.
    empty = get(ws, "/overview", **{"from": "2025-01-08T00:00:00Z", "to": "2025-01-15T00:00:00Z"})
    assert empty["change"]["inferences"] is None


def test_models_distributions_and_groups(ws: Workspace) -> None:
    seed(ws)
    models = {m["model_id"]: m for m in get(ws, "/models")["models"]}
    assert models["a/1"]["inferences"] == 3
    assert models["a/1"]["last_seen"] == "2026-01-11T12:00:00Z"
    assert models["b/2"]["avg_inference_time"] == 0.4

    dist = get(ws, "/distributions", bins="10")
    assert len(dist["bins"]) == 11 and dist["bins"][-1] == 1.0
    assert sum(dist["confidence"]) == 4
    assert dist["confidence"][9] == 2  # 0.9 and 1.0 share the last bin
    assert {c["class"]: c["predictions"] for c in dist["classes"]} == {"cat": 2, "dog": 2}
    assert dist["confidence_by_class"]["dog"][5] == 1
    # Class and confidence filters count only the predictions that meet them.
    assert sum(get(ws, "/distributions", min_confidence="0.8")["confidence"]) == 2

    groups = {g["value"]: g for g in get(ws, "/groups", group_by="meta.plant")["groups"]}
    assert groups['=HYPERLINK("x")']["inferences"] == 2
    assert groups["-3"]["inferences"] == 1
    assert groups[None]["inferences"] == 1
    formula = groups['=HYPERLINK("x")']
    assert formula["classes"] == [{"class": "cat", "inferences": 2}, {"class": "dog", "inferences": 1}]
    by_device = {g["value"]: g["inferences"] for g in get(ws, "/groups", group_by="device_id")["groups"]}
    assert by_device == {"cam-1": 1, "cam-2": 2, None: 1}


def test_bad_parameters_are_refused(ws: Workspace) -> None:
    for path, params in [("/groups", {"group_by": "class"}), ("/groups", {}), ("/distributions", {"bins": "0"}),
                         ("/distributions", {"bins": "²"}), ("/models", {"colour": "red"}),
                         ("/export.csv", {"columns": "plant"})]:
        reply = ws.client.get(f"{ws.api}{path}", params=params)
        assert reply.status_code == 400, (path, params, reply.text)


def test_a_window_back_to_year_one_has_no_previous_period(ws: Workspace) -> None:
    body = get(ws, "/overview", **{"from": "0001-01-02T00:00:00Z", "to": "9999-01-01T00:00:00Z"})
    assert body["previous_totals"]["inferences"] == 0


def test_csv_export_of_the_filtered_rows_defuses_formulas(ws: Workspace) -> None:
    seed(ws)
    reply = ws.client.get(f"{ws.api}/export.csv", params={"model_id": "a/1", **WEEK})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [r["inference_id"] for r in rows] == ["a3", "a2", "a1"]  # newest first
    assert [r["meta.plant"] for r in rows] == ["-3", "'=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"]
    assert rows[2]["meta.line"] == "7"
    assert rows[2]["classes"] == "cat;dog"
    assert rows[2]["device_id"] == "cam-1"
    picked = ws.client.get(f"{ws.api}/export.csv", params={"columns": "meta.line"})
    assert next(csv.reader(io.StringIO(picked.text)))[-1] == "meta.line"
    assert len(list(csv.reader(io.StringIO(picked.text)))) == 1 + 5  # every inference, all time


def test_another_workspaces_key_cannot_read_the_figures(ws: Workspace, other: Workspace) -> None:
    seed(ws)
    for path in ("/overview", "/models", "/distributions", "/export.csv"):
        assert other.client.get(f"{ws.api}{path}").status_code == 403
