"""Retention over HTTP: a workspace's policy, a sweep (on demand and on the sweeper's schedule),
and usage. Data older than the policy is gone after a sweep; newer data, its metadata, its image
and every other workspace's data are intact."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.image_store import LocalImages
from inferwatch.retention import delete_image_files
from tests.conftest import EVER, Workspace, attach, box, ingest, item, list_all, open_workspace
from tests.e2e.test_images import picture, sha, upload
from tests.server import Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own


@pytest.fixture(scope="module")
def keeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("retention") / "data", "--retention-interval", "3600").start()
    yield srv
    srv.stop()


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def seed(ws: Workspace) -> None:
    """Inferences 0, 2, 5, 10 and 20 days old, each with metadata; the newest with an image."""
    ingest(ws, [item(f"d{d}", "m/1", timestamp=days_ago(d), predictions=[box("a", 0.9)]) for d in (0, 2, 5, 10, 20)])
    attach(ws, [{"inference_ids": [f"d{d}" for d in (0, 2, 5, 10, 20)], "field_name": "line", "field_value": "3"}])


def ids(ws: Workspace, **params: Any) -> list[str]:
    return [row["inference_id"] for row in list_all(ws, **EVER, **params)]


def sweep(server: Server) -> dict[str, Any]:
    reply = server.admin("POST", "/retention/sweep")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def usage(ws: Workspace) -> dict[str, Any]:
    reply = ws.client.get(f"{ws.api}/usage")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_days_policy_sweep_and_usage(keeper: Server) -> None:
    with open_workspace(keeper, "keep") as ws, open_workspace(keeper, "bystander") as other:
        seed(ws)
        seed(other)
        data = picture(size=(64, 48))
        assert upload(keeper, ws.key, data, params=[("inference_id", "d0")]).status_code == 200
        before = usage(ws)["tables"]
        assert (before["inferences"]["rows"], before["metadata"]["rows"], before["image_files"]) == (
            5, 5, {"rows": 1, "bytes": len(data)})
        reply = ws.client.put(f"{ws.api}/retention", json={"max_days": 7, "image_max_days": 30})
        assert reply.status_code == 200 and reply.json() == {"max_days": 7, "max_inferences": None,
                                                             "image_max_days": 30}
        swept = sweep(keeper)
        assert {"inferences": 2, "metadata": 2, "images": 0, "image_files": 0, "events": 0} in swept["swept"].values()
        assert ids(ws) == ["d0", "d2", "d5"]
        assert ids(ws, **{"meta.line": "3"}) == ["d0", "d2", "d5"]  # the survivors keep their metadata
        assert ws.client.get(f"{ws.api}/inferences/d10").status_code == 404
        assert ws.client.get(f"{ws.api}/inferences/d0/image").content == data
        assert ids(other) == ["d0", "d2", "d5", "d10", "d20"]  # no policy, nothing swept
        after = usage(ws)
        assert after["retention"] == {"max_days": 7, "max_inferences": None, "image_max_days": 30}
        tables = after["tables"]
        assert (tables["inferences"]["rows"], tables["metadata"]["rows"], tables["images"]["rows"]) == (3, 3, 1)
        assert tables["inferences"]["bytes"] > 0  # checkpointed after the sweep: on disk
        assert after["total_bytes"] == sum(t["bytes"] for t in tables.values())
        again = sweep(keeper)["swept"]  # a second sweep finds nothing more
        assert again and all(v["inferences"] == v["metadata"] == 0 for v in again.values())
        assert ids(ws) == ["d0", "d2", "d5"]


def test_count_policy_and_clearing_it(keeper: Server) -> None:
    with open_workspace(keeper, "count") as ws:
        seed(ws)
        assert ws.client.put(f"{ws.api}/retention", json={"max_inferences": 2}).status_code == 200
        sweep(keeper)
        assert ids(ws) == ["d0", "d2"]
        assert ids(ws, **{"meta.line": "3"}) == ["d0", "d2"]
        assert ws.client.put(f"{ws.api}/retention", json={}).json() == {
            "max_days": None, "max_inferences": None, "image_max_days": None}
        ingest(ws, [item("old", "m/1", timestamp=days_ago(400))])
        sweep(keeper)
        assert ids(ws) == ["d0", "d2", "old"]
        for bad in ({"max_days": 0}, {"max_inferences": -1}, {"keep": 3}, {"max_days": "7"}):
            assert ws.client.put(f"{ws.api}/retention", json=bad).status_code == 400, bad


def test_the_sweeper_runs_on_its_own(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", env={"INFERWATCH_RETENTION_INTERVAL": "0.1"}).start()  # the env var, too
    try:
        with open_workspace(srv, "sched") as ws:
            seed(ws)
            assert ws.client.put(f"{ws.api}/retention", json={"max_days": 3}).status_code == 200
            deadline = time.monotonic() + 30
            while ids(ws) != ["d0", "d2"]:
                assert time.monotonic() < deadline, ids(ws)
                time.sleep(0.05)
            assert ids(ws, **{"meta.line": "3"}) == ["d0", "d2"]
    finally:
        srv.stop()


def test_orphan_image_files_are_deleted_with_their_thumbnails(tmp_path: Path) -> None:
    images = LocalImages(tmp_path / "images")
    kept, gone = picture(size=(10, 10)), picture(size=(12, 12))
    images.save(sha(kept), kept)
    images.save(sha(gone), gone)
    images.thumbnail(sha(gone), 256)
    assert delete_image_files(images, [sha(gone)]) == 1
    assert images.read(sha(kept)) == kept
    assert not list(images.path(sha(gone)).parent.glob(images.path(sha(gone)).name + "*"))
