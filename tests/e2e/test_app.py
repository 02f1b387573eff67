"""The app as a whole, run in-process: the commit timeout, the liveness answer's schema version,
the favicon, and the Roboflow reports' count of new inferences."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from inferwatch.store.clickhouse import schema as clickhouse_schema
from inferwatch.store.duckdb import schema as duckdb_schema
from tests.conftest import Workspace, item, load, open_workspace, total
from tests.server import InProcess


@pytest.fixture
def slow_app(tmp_path: Path) -> Iterator[InProcess]:
    app = InProcess(tmp_path / "data", commit_timeout_s=0.2).start()
    yield app
    app.stop()


def test_rows_the_writer_never_took_in_time_get_503_and_are_not_written(slow_app: InProcess) -> None:
    held, release = threading.Event(), threading.Event()

    def hold(store: object) -> None:
        held.set()
        release.wait(30)

    with open_workspace(slow_app) as ws:
        busy = threading.Thread(target=slow_app.app.state.runtime.writer.call, args=(hold,))
        busy.start()
        try:
            assert held.wait(30)  # the writer is in a long write: new rows wait in its queue
            reply = ws.client.post(f"{ws.api}/inferences", json={"inferences": [item("late")]})
            assert reply.status_code == 503, reply.text
            assert reply.headers["retry-after"] == "5"
            assert reply.json()["error"] == "Overloaded"
        finally:
            release.set()
            busy.join()
        assert total(ws) == 0  # withdrawn from the queue: nothing commits behind the 503
        assert ws.client.get("/healthz").json()["queue_rows"] == 0
        retried = ws.client.post(f"{ws.api}/inferences", json={"inferences": [item("late")]})
        assert retried.status_code == 200, retried.text
        assert total(ws) == 1


@pytest.mark.parametrize("backend", ["duckdb", "chdb"])
def test_healthz_names_the_backend_its_schema_version_counts_for(
        tmp_path: Path, chdb_url: Callable[[str], str], backend: str) -> None:
    app = InProcess(tmp_path / "data", chdb_url("health") if backend == "chdb" else None).start()
    try:
        with app.client() as client:
            body = client.get("/healthz").json()
    finally:
        app.stop()
    expected = {"duckdb": ("duckdb", len(duckdb_schema.MIGRATIONS)),
                "chdb": ("clickhouse", len(clickhouse_schema.MIGRATIONS))}[backend]
    assert (body["store"], body["schema_version"]) == expected


def test_favicon_is_served(app_server: InProcess) -> None:
    with app_server.client() as client:
        reply = client.get("/favicon.ico")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/x-icon"
    with Image.open(io.BytesIO(reply.content)) as icon:
        assert icon.format == "ICO"
        assert (32, 32) in icon.info["sizes"]


def test_a_report_sent_again_counts_no_new_inferences(ws: Workspace) -> None:
    body = json.loads(json.dumps(load("pingback-tiny")).replace("FIXTURE_KEY", ws.key))
    first = ws.client.post("/inference-stats", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["new"] == first.json()["accepted"] > 0
    again = ws.client.post("/inference-stats", json=body)
    assert again.json() == {"status": "ok", "accepted": first.json()["accepted"], "new": 0}

    report = {"timestamp": "2026-01-01T00:00:00Z", "inference_results": [
        {"inference_id": "agg-1", "model_id": "m/1", "class_name": "cat", "confidence": 0.9}]}
    sent = ws.client.post(f"/{ws.slug}/inference-stats", json=report)
    assert sent.status_code == 200, sent.text
    assert sent.json()["new"] == 1
    assert ws.client.post(f"/{ws.slug}/inference-stats", json=report).json()["new"] == 0


def test_a_read_that_meets_the_store_reopening_is_a_503_and_the_exception_stays_inside(tmp_path: Path) -> None:
    """The writer reopening the DuckDB file closes the database under reads in flight. Such a read
    is a 503 to retry, answered without the exception leaving the app: one that leaves it after
    the answer makes the server close the connection, and a client reusing it meets a reset. The
    transport here raises whatever leaves the app."""
    app = InProcess(tmp_path / "data").start()
    store = app.app.state.runtime.store
    headers = {"Authorization": f"Bearer {app.initial_key}"}

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.app), base_url=app.url) as client:
            return await client.get(path, headers=headers)

    try:
        store._db.close()  # `reopen` between closing the file and opening it again
        reply = app.portal.call(get, "/api/v1/default/inferences")
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"] == "Store unavailable" and "retry-after" in reply.headers
        store.reopen()
        assert app.portal.call(get, "/api/v1/default/inferences").status_code == 200
    finally:
        app.stop()
