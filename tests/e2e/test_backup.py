"""Backups (reliability promise 6): `inferwatch backup` while the server runs and takes writes,
`inferwatch restore` into another data dir, and everything reads back the same."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EVER, Workspace, attach, ingest, item, list_all, load, open_workspace
from tests.e2e.test_cli import cli
from tests.e2e.test_images import picture, sha, upload
from tests.server import TLS, Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

BATCH = 20


def _report(key: str) -> dict[str, Any]:
    """A captured inference-server report (device facts and inferences) sent with this key."""
    body: dict[str, Any] = load("pingback-tiny")
    body["api_key"] = key
    return body


def _everything(server: Server, ws: Workspace) -> dict[str, Any]:
    """What a workspace holds, through the API: rows, metadata fields, devices, image bytes."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ws.key}"}, verify=TLS) as client:
        here = Workspace(ws.slug, ws.key, client)
        rows = sorted(list_all(here), key=lambda r: (r["inference_id"], r["image_index"]))
        for row in rows:
            row.pop("received_at")
        fields = client.get(f"{ws.api}/metadata/fields", params={"top": "1000"}).json()["fields"]
        devices = client.get(f"{ws.api}/devices", params=EVER).json()["devices"]
        for device in devices:
            device.pop("online")
        image = client.get(f"{ws.api}/inferences/pic-0/image")
        assert image.status_code == 200
        return {"rows": rows, "fields": fields, "devices": devices, "image": image.content}


def _restore_and_read(tmp_path: Path, name: str, backup: Path, ws: Workspace) -> dict[str, Any]:
    target = tmp_path / name
    restored = cli("restore", "--from", str(backup), "--data-dir", str(target))
    assert restored.returncode == 0, restored.stderr
    server = Server(target).start()
    try:
        return _everything(server, ws)
    finally:
        server.stop()


def test_backup_while_serving_and_restore_round_trip(own_server: Server, tmp_path: Path) -> None:
    with open_workspace(own_server, "bk") as ws:
        ingest(ws, [item(f"i{n}", device_id="cam-1", tags=["lineA"], metadata={"site": "a"}) for n in range(50)])
        attach(ws, [{"inference_ids": ["i1", "i2", "early"], "field_name": "inspection", "field_value": "passed"}])
        assert httpx.post(f"{own_server.url}/inference-stats", json=_report(ws.key), verify=TLS).status_code == 200
        ingest(ws, [item("pic-0")])
        image = picture()
        assert upload(own_server, ws.key, image, params=[("inference_id", "pic-0")]).status_code == 200
        before = _everything(own_server, ws)
        assert {d["device_id"] for d in before["devices"]} > {"cam-1"}  # the report's device too
        assert {f["name"] for f in before["fields"]} == {"site", "inspection"}

        # Writers keep going while the backup is taken: whatever the copy holds is whole batches.
        acknowledged: list[int] = []
        stop = threading.Event()

        def keep_writing() -> None:
            n = 0
            while not stop.is_set() and n < 200:
                reply = ws.client.post(f"{ws.api}/inferences", json={
                    "inferences": [item(f"live-{n}-{k}") for k in range(BATCH)]})
                if reply.status_code == 200:
                    acknowledged.append(n)
                n += 1

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            while len(acknowledged) < 3:  # the backup starts with writes under way
                writer.join(0.01)
            made = cli("backup", "--to", str(tmp_path / "while-serving"), "--data-dir", str(own_server.data_dir))
            acked_at_backup_end = len(acknowledged)
        finally:
            stop.set()
            writer.join()
        assert made.returncode == 0, made.stderr
        assert (tmp_path / "while-serving" / "images" / sha(image)[:2] / sha(image)[2:]).is_file()
        # A second backup into the same folder is refused: it would mix two states.
        again = cli("backup", "--to", str(tmp_path / "while-serving"), "--data-dir", str(own_server.data_dir))
        assert again.returncode != 0 and "not an empty folder" in again.stderr

        # Restoring onto the data dir of a running server is refused.
        refused = cli("restore", "--from", str(tmp_path / "while-serving"), "--data-dir", str(own_server.data_dir),
                      "--replace")
        assert refused.returncode != 0 and "server is running" in refused.stderr

        after = _restore_and_read(tmp_path, "restored", tmp_path / "while-serving", ws)
        live = [r for r in after["rows"] if r["inference_id"].startswith("live-")]
        assert len(live) % BATCH == 0, "a batch was copied in part"
        assert len(live) >= 3 * BATCH  # acknowledged before the backup began
        assert len(live) <= acked_at_backup_end * BATCH + BATCH
        for batch in {r["inference_id"].split("-")[1] for r in live}:
            assert sum(r["inference_id"].startswith(f"live-{batch}-") for r in live) == BATCH
        after["rows"] = [r for r in after["rows"] if not r["inference_id"].startswith("live-")]
        assert after == before

    # With the server stopped, the command opens the store itself.
    own_server.stop()
    made = cli("backup", "--to", str(tmp_path / "offline"), "--data-dir", str(own_server.data_dir))
    assert made.returncode == 0, made.stderr
    offline = _restore_and_read(tmp_path, "restored-offline", tmp_path / "offline", ws)
    offline["rows"] = [r for r in offline["rows"] if not r["inference_id"].startswith("live-")]
    assert offline == before
    # A restore never overwrites a store unless asked to.
    kept = cli("restore", "--from", str(tmp_path / "offline"), "--data-dir", str(tmp_path / "restored"))
    assert kept.returncode != 0 and "--replace" in kept.stderr
