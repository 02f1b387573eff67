"""Upgrades keep data (reliability promise 5): a store made at schema version 1 is migrated in
place by the current server, and everything written before is found through the API."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import httpx
import pytest

from inferwatch.store.duckdb import schema
from tests.conftest import EVER, Workspace, item, list_all, stats
from tests.server import TLS, Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

KEY = "old-store-key-123456"
T0 = 1_780_000_000  # 2026-05-28


def make_v1_store(path: Path) -> None:
    """The first migration only, and rows written the way version 1 wrote them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), config=schema.CONFIG)
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    con.execute(schema.MIGRATIONS[0])
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.execute("INSERT INTO workspaces VALUES (1, 'old', ?, now())", [hashlib.sha256(KEY.encode()).hexdigest()])
    for n in range(3):
        con.execute(
            "INSERT INTO inferences SELECT md5_number('1' || chr(1) || ? || chr(1) || '0'), 1, ?, 0,"
            " to_timestamp(?)::TIMESTAMP, now()::TIMESTAMP, 'pcb/1', 'object-detection', 'cam-1', ['lineA'],"
            " 'native', 0.02, 640, 480, 1, 0.9, 0.9, ['scratch'],"
            " [{'class': 'scratch', 'class_id': 0, 'confidence': 0.9, 'x': 1.0, 'y': 2.0, 'width': 3.0,"
            "   'height': 4.0, 'detection_id': NULL, 'points': NULL, 'keypoints': NULL}], NULL",
            [f"old-{n}", f"old-{n}", T0 + n],
        )
    con.execute("INSERT INTO metadata VALUES (1, 'old-1', 'site', 'canada', now()),"
                " (1, 'not-yet', 'site', 'early', now()), (1, 'old-0', 'temp', '21.5', now()),"
                " (1, 'old-2', 'temp', '19', now())")
    con.close()


def test_a_version_1_store_is_migrated_and_keeps_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_v1_store(data_dir / "inferwatch.duckdb")
    server = Server(data_dir).start()
    try:
        assert httpx.get(f"{server.url}/healthz", verify=TLS).json()["schema_version"] == len(schema.MIGRATIONS)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, verify=TLS) as client:
            ws = Workspace("old", KEY, client)
            rows = {r["inference_id"]: r for r in list_all(ws)}
            assert sorted(rows) == ["old-0", "old-1", "old-2"]
            assert rows["old-1"]["metadata"] == {"site": "canada"}
            # Values stored before types existed stay strings; those that read as numbers compare.
            assert rows["old-0"]["metadata"] == {"temp": "21.5"}
            assert [r["inference_id"] for r in list_all(ws, **{"meta.temp[gt]": "20"})] == ["old-0"]
            assert [r["inference_id"] for r in list_all(ws, **{"meta.temp[lte]": "19"})] == ["old-2"]
            assert rows["old-0"]["predictions"] == [
                {"class": "scratch", "class_id": 0, "confidence": 0.9, "x": 1.0, "y": 2.0, "width": 3.0,
                 "height": 4.0}]
            assert rows["old-0"]["device_id"] == "cam-1" and rows["old-0"]["tags"] == ["lineA"]
            assert stats(ws)["totals"]["inferences"] == 3
            assert [r["inference_id"] for r in list_all(ws, **{"meta.site": "canada"})] == ["old-1"]
            # The identity is the same as version 1's: a re-sent old inference counts once; metadata
            # attached before its inference (in version 1) meets it when it arrives.
            reply = client.post("/api/v1/old/inferences", json={"inferences": [
                item("old-0", timestamp=T0), item("not-yet", timestamp=T0 + 10)]})
            assert reply.status_code == 200, reply.text
            rows = {r["inference_id"]: r for r in list_all(ws)}
            assert sorted(rows) == ["not-yet", "old-0", "old-1", "old-2"]
            assert rows["not-yet"]["metadata"] == {"site": "early"}
            assert rows["old-0"]["model_id"] == "pcb/1"  # the first one stored was kept
            # What later versions added works on the migrated store.
            devices = client.get("/api/v1/old/devices", params=EVER)
            assert devices.status_code == 200
            assert [d["device_id"] for d in devices.json()["devices"]] == ["cam-1"]
            # A wrong verdict on a row written before `top_class` existed names the class found.
            reply = client.post("/old/inference-stats/metadata", json={"data": [
                {"inference_ids": ["old-2"], "field_name": "expected", "field_value": "dent"}]})
            assert reply.status_code == 200, reply.text
            reply = client.get("/api/v1/old/performance",
                               params={**EVER, "model_id": "pcb/1", "label_field": "expected"})
            assert reply.status_code == 200, reply.text
            matrix = reply.json()["confusion_matrix"]
            assert matrix["labels"] == ["dent", "scratch"] and matrix["counts"] == [[0, 1], [0, 0]]
        server.stop()
        # Migrating is done once: a second start finds the current version and the same data.
        server.start()
        assert httpx.get(f"{server.url}/healthz", verify=TLS).json()["schema_version"] == len(schema.MIGRATIONS)
        reply = httpx.get(f"{server.url}/api/v1/old/stats", params=EVER, verify=TLS,
                          headers={"Authorization": f"Bearer {KEY}"})
        assert reply.json()["totals"]["inferences"] == 4
    finally:
        server.stop()
    con = duckdb.connect(str(data_dir / "inferwatch.duckdb"), read_only=True)
    versions = [v for (v,) in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
    con.close()
    assert versions == list(range(1, len(schema.MIGRATIONS) + 1))
