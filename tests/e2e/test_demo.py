"""`inferwatch demo` against a real server: what a new user's dashboard would show after it ran."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Workspace, list_all, open_workspace, stats
from tests.server import TLS, Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

DRIFTING = "mexico-line2-cam1"
LIVE = 60


def demo(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferwatch", "demo", *args], capture_output=True, text=True,
                          timeout=timeout)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def since(began: datetime) -> dict[str, str]:
    """A window holding the whole run: its half hour of history and the live part after it."""
    return {"from": _iso(began - timedelta(hours=1)), "to": _iso(datetime.now(UTC) + timedelta(minutes=1))}


@pytest.fixture(scope="module")
def demoed(server: Server) -> Iterator[tuple[Workspace, datetime, str]]:
    """A workspace after half an hour of backfill and exactly LIVE live inferences; the moment the
    live part could begin at the earliest; the demo's output."""
    with open_workspace(server, "demo") as ws:
        began = datetime.now(UTC)
        run = demo("--url", server.url, "--api-key", ws.key, "--hours-back", "0.5", "--rate", "20",
                   "--count", str(LIVE), "--seed", "7")
        assert run.returncode == 0, run.stderr
        yield ws, began, run.stdout


def test_three_factories_three_models_and_every_camera(demoed: tuple[Workspace, datetime, str]) -> None:
    ws, began, _ = demoed
    body = stats(ws, group_by="model_id", **since(began))
    assert body["totals"]["models"] == 3
    assert {p["group"] for p in body["series"]} == {"pcb-defects/7", "packaging-qa/3", "label-check/2"}
    assert body["totals"]["devices"] == 24
    fields = {f["name"]: f for f in ws.client.get(f"{ws.api}/metadata/fields").json()["fields"]}
    location = fields["camera_location"]
    assert location["distinct_values"] == 3
    assert {v["value"] for v in location["top_values"]} == {"canada", "mexico", "poland"}
    # Every inference names its factory: the field is on as many inferences as there are.
    assert location["inferences"] == body["totals"]["inferences"]
    by_factory = stats(ws, group_by="meta.camera_location", **since(began))
    assert {p["group"] for p in by_factory["series"]} == {"canada", "mexico", "poland"}


def test_predictions_look_like_the_models_answers(demoed: tuple[Workspace, datetime, str]) -> None:
    ws, _, _ = demoed
    detections = list_all(ws, model_id="pcb-defects/7", limit=200)
    boxed = [p for row in detections for p in row["predictions"]]
    assert boxed, "the detector found nothing at all"
    for p in boxed:
        assert {"x", "y", "width", "height", "confidence", "class", "class_id", "detection_id"} <= p.keys()
        assert 0 < p["confidence"] < 1
        assert p["class"] in ("scratch", "solder-bridge", "missing-component", "misalignment", "burn")
    assert all(row["image"] == {"width": 1280, "height": 720} and row["inference_time"] > 0 for row in detections)
    labels = list_all(ws, model_id="label-check/2", limit=200)
    assert labels and all(row["task"] == "classification" and row["n_predictions"] == 1 for row in labels)
    assert all(set(row["class_scores"]) == {"ok", "smudged", "misprinted", "missing"} for row in labels)


def test_one_camera_drifts_down_and_the_others_do_not(demoed: tuple[Workspace, datetime, str]) -> None:
    ws, began, _ = demoed
    early = {"from": _iso(began - timedelta(minutes=31)), "to": _iso(began - timedelta(minutes=12))}
    late = {"from": _iso(began - timedelta(minutes=4)), "to": _iso(datetime.now(UTC) + timedelta(minutes=1))}

    def confidence(window: dict[str, str], device: str) -> float:
        totals = stats(ws, device_id=device, **window)["totals"]
        assert totals["predictions"] > 10, (device, window, totals)
        return float(totals["avg_confidence"])

    before, after = confidence(early, DRIFTING), confidence(late, DRIFTING)
    assert after < before - 0.15, (before, after)
    steady = "mexico-line2-cam2"
    assert abs(confidence(late, steady) - confidence(early, steady)) < 0.08


def test_inspections_arrive_as_metadata_and_agree_with_the_predictions(
        demoed: tuple[Workspace, datetime, str]) -> None:
    ws, _, _ = demoed
    fields = {f["name"]: f for f in ws.client.get(f"{ws.api}/metadata/fields").json()["fields"]}
    assert {v["value"] for v in fields["inspection"]["top_values"]} == {"passed", "failed"}
    assert fields["expected"]["inferences"] == fields["inspection"]["inferences"] > 0
    passed = list_all(ws, model_id="label-check/2", **{"meta.inspection": "passed"})
    failed = list_all(ws, model_id="label-check/2", **{"meta.inspection": "failed"})
    assert passed and failed
    # A classifier's verdict passed inspection exactly when it named the expected label.
    assert all(row["classes"] == [row["metadata"]["expected"]] for row in passed)
    assert all(row["classes"] != [row["metadata"]["expected"]] for row in failed)


def test_live_traffic_is_stamped_now_and_inspected_after_it(demoed: tuple[Workspace, datetime, str]) -> None:
    ws, began, output = demoed
    backfill = _number(r"backfill: ([\d,]+) inferences", output)
    assert stats(ws, **since(began))["totals"]["inferences"] == backfill + LIVE
    # The history ends where the run began; the live inferences are the newest, stamped as sent.
    newest = ws.client.get(f"{ws.api}/inferences", params={"limit": LIVE}).json()["inferences"]
    assert len(newest) == LIVE
    for row in newest:
        stamped = datetime.fromisoformat(row["timestamp"])
        received = datetime.fromisoformat(row["received_at"])
        assert stamped >= began and abs((received - stamped).total_seconds()) < 30, row
    inspected = [row for row in newest if "inspection" in row["metadata"]]
    assert inspected, "no live inference was inspected"
    assert all(row["metadata"]["inspection"] in ("passed", "failed") for row in inspected)


def test_finds_the_running_server_and_its_key_from_the_data_dir(own_server: Server) -> None:
    run = demo("--data-dir", str(own_server.data_dir), "--hours-back", "0", "--rate", "50", "--count", "25")
    assert run.returncode == 0, run.stderr
    assert f"workspace 'default' at {own_server.url}" in run.stdout
    assert default_totals(own_server)["inferences"] == 25


def _number(pattern: str, output: str) -> int:
    found = re.search(pattern, output)
    assert found, output
    return int(found.group(1).replace(",", ""))


def default_totals(server: Server) -> dict[str, Any]:
    """All-time totals of the server's first workspace, read with the first start's key."""
    reply = httpx.get(f"{server.url}/api/v1/default/stats", params={"from": "2000-01-01", "to": "2100-01-01"},
                      headers={"Authorization": f"Bearer {server.initial_key}"}, verify=TLS)
    assert reply.status_code == 200, reply.text
    totals: dict[str, Any] = reply.json()["totals"]
    return totals


def test_says_how_to_start_a_server_when_none_runs(tmp_path: Path) -> None:
    run = demo("--data-dir", str(tmp_path / "nothing-here"), "--count", "1", timeout=60)
    assert run.returncode == 1
    assert "no running server" in run.stderr and "--url" in run.stderr


def test_a_wrong_key_stops_the_demo_with_a_clear_message(server: Server) -> None:
    run = demo("--url", server.url, "--api-key", "not-a-key", "--count", "1", timeout=60)
    assert run.returncode == 1
    assert "--api-key" in run.stderr


def test_waits_out_a_busy_server_and_loses_nothing(tmp_path: Path) -> None:
    """Three demos at once against a writer queue of 100 rows: batches are refused with 503
    while another is written; each demo waits as told and sends again, and every row lands."""
    srv = Server(tmp_path / "data", "--queue-max-rows", "100").start()
    try:
        runs = [subprocess.Popen([sys.executable, "-m", "inferwatch", "demo", "--url", srv.url, "--api-key",
                                  srv.initial_key, "--hours-back", "0.2", "--rate", "20", "--count", "0",
                                  "--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for seed in range(3)]
        outputs = [r.communicate(timeout=300) for r in runs]
        assert all(r.returncode == 0 for r in runs), [err for _, err in outputs]
        sent = sum(_number(r"done: ([\d,]+) inferences", out) for out, _ in outputs)
        assert any("waited" in out for out, _ in outputs), "no demo ever met a busy server"
        assert default_totals(srv)["inferences"] == sent
    finally:
        srv.stop()
