"""Roboflow's real `roboflow-slim` 1.7.3 SDK and its CLI, unchanged, against an inferwatch server
process, configured only with `API_URL`: every Vision Events method of the SDK (bootstrap, use
cases, events, batches, upload, query and its pager, schema) and every `roboflow vision-events`
command. The SDK and what it imports are installed by `make client-deps` into
.venv/roboflow-slim (tests/clients/requirements-roboflow.txt); each run is a subprocess, since
the SDK reads API_URL when it is imported."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Workspace, list_all
from tests.server import Server

pytestmark = pytest.mark.process  # drives a server process with real clients

ROOT = Path(__file__).resolve().parents[2]
INSTALL = Path(os.environ.get("INFERWATCH_ROBOFLOW_SDK", ROOT / ".venv" / "roboflow-slim"))
DRIVER = ROOT / "tests" / "clients" / "roboflow_driver.py"


def _env(server: Server, home: Path, key: str | None = None) -> dict[str, str]:
    assert (INSTALL / "roboflow").is_dir(), (
        f"roboflow-slim is not installed in {INSTALL}: run `make client-deps`")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": str(INSTALL),
           "PYTHONDONTWRITEBYTECODE": "1", "API_URL": server.url,
           "ROBOFLOW_CONFIG_DIR": str(home / "roboflow-config.json")}
    if key is not None:
        env["ROBOFLOW_API_KEY"] = key
    return env


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "frame.png"
    out = io.BytesIO()
    Image.new("RGB", (160, 120), (200, 30, 30)).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def test_every_sdk_method(server: Server, ws: Workspace, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(DRIVER), ws.key, str(_image(tmp_path))], env=_env(server, tmp_path),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-5000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    uc = out["created"]["id"]
    assert out["workspace"] == {"name": ws.slug, "url": ws.slug}
    assert out["renamed"] == {"id": uc, "name": "sdk line 2"}
    assert out["uploaded"]["sourceId"] == out["uploaded_bare"]["sourceId"]  # the same bytes, the same image
    assert out["written"] == {"eventId": "sdk-1", "created": True}
    assert out["batch"] == {"created": 12, "eventIds": [f"sdk-b{i}" for i in range(12)]}
    assert [e["eventId"] for e in out["query"]["events"]] == ["sdk-1"]
    assert out["query"]["hasMore"] is False and out["query"]["lookbackDays"] == 14
    # custom and safety_alert events of the last 6.5 minutes (b0..b5) at 142 and over (b2..b5)
    assert [e["eventId"] for e in out["query_filtered"]["events"]] == ["sdk-b2", "sdk-b3", "sdk-b4", "sdk-b5"]
    assert out["pages"] == [["sdk-1", "sdk-b0", "sdk-b1", "sdk-b2", "sdk-b3"],
                            ["sdk-b4", "sdk-b5", "sdk-b6", "sdk-b7", "sdk-b8"], ["sdk-b9", "sdk-b10", "sdk-b11"]]
    assert out["schema"]["fields"] == {"operator": {"types": ["string"]}, "temperature": {"types": ["number"]}}
    (listed,) = out["listed"]["useCases"]
    assert (listed["id"], listed["name"], listed["eventCount"]) == (uc, "sdk line 2", 13)
    typo = ["customMetdata: unknown field, ignored (kept in the body)"]
    assert out["warned"] == {"eventId": "sdk-typo", "created": True, "ingestionWarnings": typo}
    assert [(e["eventId"], e["ingestionWarnings"]) for e in out["with_warnings"]["events"]] == [("sdk-typo", typo)]
    assert [e["eventId"] for e in out["without_warnings"]["events"]] == ["sdk-1", "sdk-b0", "sdk-b1"]
    assert out["archived"] == {"success": True}
    assert [u["id"] for u in out["listed_inactive"]["useCases"]] == [uc]
    assert "archived" in out["refused"]
    assert out["unarchived"] == {"success": True} and "Solution is not archived" in out["not_archived"]
    # The event's image is an inference with its metadata, on the dashboard's API.
    (row,) = list_all(ws, **{"meta.ve.data.result": "fail"})
    assert row["inference_id"] == "sdk-1" and row["image"] == {"width": 160, "height": 120}
    assert row["metadata"]["temperature"] == 151.5 and row["predictions"][0]["class"] == "scratch"


def _cli(server: Server, home: Path, key: str, *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "roboflow.roboflowpy", "--json", "vision-events", *args],
                          env=_env(server, home, key), capture_output=True, text=True, timeout=120, cwd=home)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return json.loads(done.stdout)


def test_every_cli_command(server: Server, ws: Workspace, tmp_path: Path) -> None:
    created = _cli(server, tmp_path, ws.key, "create-use-case", "cli line")
    uc = created["id"]
    assert created["name"] == "cli line"
    assert _cli(server, tmp_path, ws.key, "rename-use-case", uc, "-n", "cli line 2")["name"] == "cli line 2"
    uploaded = _cli(server, tmp_path, ws.key, "upload-image", str(_image(tmp_path)), "-n", "f.png",
                    "-M", '{"camera": "c1"}')
    at = datetime.now(UTC)
    now = at.isoformat()
    event = {"eventId": "cli-1", "eventType": "custom", "useCaseId": uc, "timestamp": now,
             "customMetadata": {"line": "a"}, "images": [{"sourceId": uploaded["sourceId"]}]}
    assert _cli(server, tmp_path, ws.key, "write", json.dumps(event))["eventId"] == "cli-1"
    batch = [{**event, "eventId": f"cli-b{i}", "eventType": "quality_check", "images": [],
              "timestamp": (at - timedelta(minutes=i + 1)).isoformat()} for i in range(3)]
    assert _cli(server, tmp_path, ws.key, "write-batch", json.dumps(batch))["created"] == 3
    queried = _cli(server, tmp_path, ws.key, "query", uc, "-t", "quality_check", "-l", "2")
    assert len(queried["events"]) == 2 and queried["hasMore"] is True
    rest = _cli(server, tmp_path, ws.key, "query", uc, "-t", "quality_check", "--cursor", queried["nextCursor"])
    assert len(rest["events"]) == 1 and rest["hasMore"] is False
    assert [e["eventId"] for e in _cli(server, tmp_path, ws.key, "query", uc, "--start", now, "--end", now)[
        "events"]] == ["cli-1"]
    schema = _cli(server, tmp_path, ws.key, "metadata-schema", uc)
    assert schema["fields"] == {"line": {"types": ["string"]}}
    listed = _cli(server, tmp_path, ws.key, "use-cases")
    assert [u["id"] for u in listed["useCases"]] == [uc]
    _cli(server, tmp_path, ws.key, "archive-use-case", uc)
    assert [u["id"] for u in _cli(server, tmp_path, ws.key, "use-cases", "-s", "inactive")["useCases"]] == [uc]
    _cli(server, tmp_path, ws.key, "unarchive-use-case", uc)
    assert [u["id"] for u in _cli(server, tmp_path, ws.key, "use-cases")["useCases"]] == [uc]
