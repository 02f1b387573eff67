"""Roboflow's real `inference` package reporting to inferwatch: its PingbackInfo posting what its own
model-monitoring cache holds (both TINY_CACHE modes), and its custom-metadata workflow block.
The package (its reporting part, tests/clients/requirements-inference.txt) is installed by
`make test` into .venv/roboflow-inference; tests/clients/inference_driver.py runs it in a
subprocess, configured by the environment as the inference server is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURES, Workspace, list_all
from tests.server import TLS, Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

ROOT = Path(__file__).resolve().parents[2]
INSTALL = Path(os.environ.get("INFERWATCH_INFERENCE_CLIENT", ROOT / ".venv" / "roboflow-inference"))
CLIENTS = ROOT / "tests" / "clients"


def _drive(server: Server, ws: Workspace, *, tiny: bool, key_in_env: bool, device: str) -> dict[str, Any]:
    assert (INSTALL / "inference").is_dir(), (
        f"the inference client is not installed in {INSTALL}: run `make test` (or `make client-deps`)")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": os.pathsep.join([str(INSTALL), str(CLIENTS / "stubs")]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "METRICS_URL": f"{server.url}/inference-stats",
        "API_BASE_URL": server.url,
        "TINY_CACHE": "true" if tiny else "false",
        "DEVICE_ID": device,
        "TAGS": "lineA,shift2",
        "INFERWATCH_KEY": ws.key,
        "MODEL_CACHE_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / "inferwatch-inference-cache"),
    }
    if key_in_env:
        env["API_KEY"] = ws.key
    done = subprocess.run([sys.executable, str(CLIENTS / "inference_driver.py"), str(FIXTURES)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-5000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _verdicts(entry: dict[str, Any]) -> Counter[str]:
    """What inferwatch stores as the predictions of one response: every detection (keypoint models:
    one per keypoint in the condensed form), a classifier's top class."""
    classes: Counter[str] = Counter()
    for response in entry["responses"]:
        if "top" in response:
            classes[response["top"]] += 1
        else:
            classes.update(p["class"] for p in response["predictions"])
    return classes


@pytest.mark.parametrize(("tiny", "key_in_env"), [(True, False), (False, True)],
                         ids=["tiny-cache-key-per-result", "full-cache-key-in-env"])
def test_the_inference_servers_own_reporter_delivers_everything(
        server: Server, ws: Workspace, tiny: bool, key_in_env: bool) -> None:
    device = f"edge-{'tiny' if tiny else 'full'}"
    report = _drive(server, ws, tiny=tiny, key_in_env=key_in_env, device=device)
    reported = report["reported"]
    rows = list_all(ws)
    expected_inferences = sum(max(1, len(e["responses"])) for e in reported)
    assert len(rows) == expected_inferences
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["inference_id"], []).append(row)
    assert set(by_id) == {e["inference_id"] for e in reported}
    for entry in reported:
        stored = by_id[entry["inference_id"]]
        assert all(r["model_id"] == entry["model_id"] for r in stored)
        got = Counter(p["class"] for r in stored for p in r["predictions"])
        if tiny and any("keypoints" in p for resp in entry["responses"] for p in resp["predictions"]):
            want = Counter(k["class"] for resp in entry["responses"] for p in resp["predictions"]
                           for k in p["keypoints"])
        else:
            want = _verdicts(entry)
        assert got == want, entry["model_id"]
    for row in rows:
        assert row["source"] == "pingback"
        assert row["device_id"] == device
        assert row["tags"] == ["lineA", "shift2"]
        assert row["inference_server_id"] == report["server_id"]
        assert row["confidence_threshold"] == 0.4
    if not tiny:  # the full form carries the geometry
        boxes = [p for r in rows if r["model_id"] == "pcb-defects/7" for p in r["predictions"]]
        assert boxes and all("x" in p and "detection_id" in p for p in boxes)
        (pose,) = [r for r in rows if r["model_id"] == "worker-pose/4"]
        assert all("keypoints" in p for p in pose["predictions"])
    (dev,) = ws.client.get(f"{ws.api}/devices").json()["devices"]
    assert dev["device_id"] == device and dev["tags"] == ["lineA", "shift2"] and dev["online"] is True
    assert dev["server_version"] == "1.8.3"
    # the custom-metadata block: GET /?api_key= for the workspace, then the metadata post
    assert report["metadata_failed"] is False, report["metadata_message"]
    assert {r["metadata"].get("camera_location") for r in list_all(ws)} == {"canada"}


def test_the_reporter_resending_counts_once(server: Server, ws: Workspace) -> None:
    first = _drive(server, ws, tiny=True, key_in_env=True, device="edge-twice")
    n = len(list_all(ws))
    assert n == sum(max(1, len(e["responses"])) for e in first["reported"])
    # A second process reports new inferences (new ids); the first ones stay counted once.
    _drive(server, ws, tiny=True, key_in_env=True, device="edge-twice")
    assert len(list_all(ws)) == 2 * n


def test_seed_documents_python_example(server: Server, ws: Workspace) -> None:
    """The seed document's example, with `requests` as it is written (the client install has it)."""
    code = (
        "import requests, sys\n"
        "url = sys.argv[1] + '/' + sys.argv[2] + '/inference-stats/metadata'\n"
        "payload = {'api_key': sys.argv[3], 'data': [{'inference_ids': ['a12a19a9-a933-44c9-970c-a55ea03bb453'],"
        " 'field_name': 'camera_location', 'field_value': 'canada'}]}\n"
        "response = requests.post(url, json=payload)\n"
        "print(response.status_code, response.text)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, server.url, ws.slug, ws.key], capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(INSTALL), "PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr
    status, _, text = done.stdout.strip().partition(" ")
    assert status == "200" and json.loads(text)["status"] == "ok"
    with httpx.Client(base_url=server.url, verify=TLS) as client:
        reply = client.get(f"{ws.api}/inferences/a12a19a9-a933-44c9-970c-a55ea03bb453",
                           headers={"Authorization": f"Bearer {ws.key}"})
    assert reply.status_code == 404 and reply.json()["detail"]["metadata"] == {"camera_location": "canada"}
