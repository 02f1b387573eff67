"""The Python SDK against a real server: every task type logged and found once, metadata, queries
and export, and the promises of `log`: nothing lost while inferwatch is down (also across a
restart of the user's process), never blocked by a stalled inferwatch, flushed at process exit."""

from __future__ import annotations

import copy
import gzip
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from PIL import Image

import inferwatch
from tests.clients.fake_upstream import FakeUpstream
from tests.conftest import Workspace, load
from tests.e2e.test_proxy import http_client
from tests.server import Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

SRC = Path(__file__).resolve().parents[2] / "src"


def detection(n: int = 2) -> dict[str, Any]:
    result: dict[str, Any] = copy.deepcopy(load("response-object-detection"))
    result.pop("inference_id", None)
    result["predictions"] = result["predictions"][:n]
    return result


def total(ws: Workspace) -> int:
    count: int = ws.client.get(f"{ws.api}/stats", params={"from": "2000-01-01"}).json()["totals"]["inferences"]
    return count


def default_total(server: Server, key: str) -> int:
    reply = httpx.get(f"{server.url}/api/v1/default/stats", params={"from": "2000-01-01"},
                      headers={"Authorization": f"Bearer {key}"})
    count: int = reply.json()["totals"]["inferences"]
    return count


@pytest.fixture
def sdk(server: Server, ws: Workspace, tmp_path: Path) -> Iterator[inferwatch.Client]:
    client = inferwatch.Client(server.url, ws.key, spool_dir=tmp_path / "spool", linger_s=0.05)
    yield client
    client.close()


def test_every_task_type_is_logged_once_with_what_the_caller_gave(sdk: inferwatch.Client, ws: Workspace) -> None:
    names = ["response-object-detection", "response-instance-segmentation", "response-keypoint-detection",
             "response-classification", "response-multi-label-classification"]
    results = [copy.deepcopy(load(name)) for name in names]
    for name, result in zip(names, results, strict=True):
        sdk.log(result, model_id=f"m/{name}", device_id="line-3-cam-1", metadata={"line": "3"}, tags=["night"])
    batch = copy.deepcopy(load("response-object-detection-batch-of-2"))
    for image in batch:
        image.pop("inference_id", None)
    sdk.log(batch, model_id="m/batch", source="inspection-app")
    assert sdk.flush(30)
    assert sdk.workspace == ws.slug  # looked up from the key
    assert sdk.counters.logged == sdk.counters.sent == 7 and sdk.counters.dropped == 0

    for name, result in zip(names, results, strict=True):
        got = ws.client.get(f"{ws.api}/inferences/{result['inference_id']}").json()
        assert (got["model_id"], got["device_id"], got["tags"], got["metadata"]) == (
            f"m/{name}", "line-3-cam-1", ["night"], {"line": "3"})
    shared = batch[0]["inference_id"]
    assert batch[1]["inference_id"] == shared  # an id was added to both images, the same one
    first = ws.client.get(f"{ws.api}/inferences/{shared}").json()
    assert first["image_count"] == 2 and first["request_source"] == "inspection-app"
    assert total(ws) == 7


def test_log_adds_an_id_the_caller_can_attach_metadata_to(sdk: inferwatch.Client, ws: Workspace) -> None:
    results = [detection() for _ in range(30)]
    for i, result in enumerate(results):
        sdk.log(result, model_id="m/1", device_id=f"cam-{i % 3}")
    ids = [r["inference_id"] for r in results]
    assert len(set(ids)) == 30
    sdk.attach_metadata(ids[:10], "inspection", "failed")
    sdk.attach_many({i: {"inspection": "passed", "expected": "car"} for i in ids[10:]})
    assert sdk.flush(30)

    failed = list(sdk.inferences(meta={"inspection": "failed"}, page_size=3))
    assert sorted(r["inference_id"] for r in failed) == sorted(ids[:10])
    assert {r["metadata"]["inspection"] for r in sdk.inferences(device_id="cam-1")} == {"failed", "passed"}
    stats = sdk.stats(start="2000-01-01", group_by="meta.inspection")
    assert stats["totals"]["inferences"] == 30


def test_metadata_keeps_its_type_and_filters_by_comparison(sdk: inferwatch.Client, tmp_path: Path) -> None:
    results = [detection() for _ in range(4)]
    for result in results:
        sdk.log(result, model_id="m/typed", device_id="cam-t")
    ids = [r["inference_id"] for r in results]
    sdk.attach_metadata(ids[:2], "temperature", 151.5)
    sdk.attach_many({ids[2]: {"temperature": 120, "ok": True}, ids[3]: {"temperature": "n/a", "ok": False}})
    assert sdk.flush(30)

    rows = {r["inference_id"]: r["metadata"] for r in sdk.inferences(model_id="m/typed")}
    assert rows == {ids[0]: {"temperature": 151.5}, ids[1]: {"temperature": 151.5},
                    ids[2]: {"temperature": 120, "ok": True}, ids[3]: {"temperature": "n/a", "ok": False}}
    assert sorted(r["inference_id"] for r in sdk.inferences(meta={"temperature[gt]": 130})) == sorted(ids[:2])
    assert [r["inference_id"] for r in sdk.inferences(meta={"ok": True})] == [ids[2]]
    assert sorted(r["inference_id"] for r in sdk.inferences(meta={"temperature[eq]": [120, 151.5]})) == sorted(ids[:3])
    stats = sdk.stats(start="2000-01-01", numeric="meta.temperature", model_id="m/typed")
    assert stats["numeric"] == {"field": "meta.temperature", "count": 3, "avg": (151.5 * 2 + 120) / 3,
                                "min": 120.0, "max": 151.5}

    # Exported, a column of one type keeps it; one sent as different types holds their text.
    sdk.export(tmp_path / "typed.parquet", model_id="m/typed")
    table = pq.read_table(tmp_path / "typed.parquet")
    by_id = dict(zip(table.column("inference_id").to_pylist(), zip(
        table.column("meta.temperature").to_pylist(), table.column("meta.ok").to_pylist(), strict=True), strict=True))
    assert by_id == {ids[0]: ("151.5", None), ids[1]: ("151.5", None), ids[2]: ("120", True), ids[3]: ("n/a", False)}


def test_export_writes_parquet_and_csv_with_metadata_columns(sdk: inferwatch.Client, tmp_path: Path) -> None:
    results = [detection(n) for n in (0, 1, 2)]
    for result in results:
        sdk.log(result, model_id="m/export", device_id="cam-9")
    sdk.attach_metadata(results[2]["inference_id"], "line", "7")
    assert sdk.flush(30)

    rows = sdk.export(tmp_path / "out.parquet", model_id="m/export")
    assert len(rows) == 3
    table = pq.read_table(tmp_path / "out.parquet")
    assert sorted(table.column("n_predictions").to_pylist()) == [0, 1, 2]
    assert sorted(table.column("meta.line").to_pylist(), key=str) == ["7", None, None]
    frame = sdk.dataframe(model_id="m/export")
    assert len(frame) == 3 and frame["meta.line"].notna().sum() == 1
    sdk.export(tmp_path / "out.csv", format="csv", model_id="m/export")
    csv = pa_csv.read_csv(tmp_path / "out.csv")
    assert csv.num_rows == 3 and set(csv.column("inference_id").to_pylist()) == {r["inference_id"] for r in results}


def test_invalid_items_are_dropped_alone(sdk: inferwatch.Client, ws: Workspace) -> None:
    good = [detection() for _ in range(5)]
    bad = detection()
    bad["predictions"][0]["confidence"] = "very"
    for result in [*good[:2], bad, *good[2:]]:
        sdk.log(result, model_id="m/1")
    assert sdk.flush(30)
    assert (sdk.counters.sent, sdk.counters.dropped) == (5, 1)
    assert total(ws) == 5


def test_nothing_is_lost_or_doubled_while_inferwatch_is_down(own_server: Server, tmp_path: Path) -> None:
    key = own_server.initial_key
    client = inferwatch.Client(own_server.url, key, spool_dir=tmp_path / "spool", linger_s=0.05, max_backoff_s=0.5)
    try:
        for _ in range(100):
            client.log(detection(), model_id="m/1")
        assert client.flush(30)
        own_server.stop()
        for _ in range(300):
            client.log(detection(), model_id="m/1")
        assert not client.flush(1)
        assert client.counters.spilled >= 300 and client.counters.sent == 100
        own_server.start(same_port=True)
        assert client.flush(60)
        assert client.counters.dropped == 0
    finally:
        client.close()
    assert default_total(own_server, key) == 400


def test_spooled_items_outlive_the_process_that_logged_them(own_server: Server, tmp_path: Path) -> None:
    key = own_server.initial_key
    url = own_server.url
    own_server.stop()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import inferwatch
        client = inferwatch.Client({url!r}, {key!r}, workspace="default", spool_dir={str(tmp_path / "spool")!r})
        for i in range(250):
            client.log({{"predictions": [{{"class": "car", "confidence": 0.9}}], "inference_id": f"gone-{{i}}"}},
                       model_id="m/1")
        # no close(): the process just ends, as a crashed or stopped inference script does
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert list((tmp_path / "spool").glob("*.ndjson.gz"))

    own_server.start(same_port=True)
    client = inferwatch.Client(url, key, spool_dir=tmp_path / "spool")
    try:
        assert client.flush(60)
        assert client.counters.sent == 250
    finally:
        client.close()
    assert not list((tmp_path / "spool").iterdir())
    assert default_total(own_server, key) == 250


def test_process_exit_sends_what_is_queued(server: Server, ws: Workspace, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import inferwatch
        client = inferwatch.Client({server.url!r}, {ws.key!r}, spool_dir={str(tmp_path / "spool")!r}, linger_s=60)
        for i in range(150):
            client.log({{"predictions": [], "inference_id": f"exit-{{i}}"}}, model_id="m/exit")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert total(ws) == 150


@pytest.mark.any_store
def test_a_stalled_inferwatch_never_blocks_log(tmp_path: Path) -> None:
    """A server that accepts connections and never answers: every `log` call still returns."""
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def stall() -> None:
        listener.settimeout(0.1)
        while not release.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except TimeoutError:
                continue
        for conn in held:
            conn.close()
        listener.close()

    thread = threading.Thread(target=stall)
    thread.start()
    client = inferwatch.Client(f"http://127.0.0.1:{port}", "key", workspace="w", spool_dir=tmp_path / "spool",
                               batch_size=100, linger_s=0.01, timeout_s=60)
    try:
        for _ in range(5000):
            client.log({"predictions": [{"class": "car", "confidence": 0.5}]}, model_id="m/1")
        # Every call returned while the first batch's request is still unanswered.
        assert client.counters.logged == 5000
        # The sender may connect after the last call returned: wait (bounded) for the stalled
        # connection, which must then still hold the first batch unanswered.
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.counters.sent == 0 and held
    finally:
        release.set()
        thread.join()
        client.close(timeout=1)
    assert client.counters.sent == 0
    assert client.counters.spilled == 5000 and client.counters.dropped == 0


def test_monitor_logs_every_infer_of_the_real_inference_client(server: Server, ws: Workspace, tmp_path: Path) -> None:
    """Roboflow's own `InferenceHTTPClient` (v1 routes, a batch of two images, and a model chosen
    with `select_model`) against a real HTTP server answering as the inference server does."""
    upstream = FakeUpstream().start()
    iw = inferwatch.Client(server.url, ws.key, spool_dir=tmp_path / "spool", linger_s=0.05)
    try:
        model = inferwatch.monitor(http_client(upstream.url, "rf-key", batch=2), iw, device_id="cam-7",
                                   metadata={"line": "2"}, tags=["pilot"])
        single = model.infer(Image.new("RGB", (64, 48)), model_id="pcb-defects/7")
        pair = model.infer([Image.new("RGB", (32, 32)), Image.new("RGB", (40, 30))], model_id="pcb-defects/7")
        model.select_model("paint-color/3")
        chosen = model.infer(Image.new("RGB", (20, 20)))
        assert iw.flush(30)
    finally:
        iw.close()
        upstream.stop()

    assert isinstance(single, dict) and isinstance(pair, list) and len(pair) == 2
    got = ws.client.get(f"{ws.api}/inferences/{single['inference_id']}").json()
    assert (got["model_id"], got["device_id"], got["tags"], got["metadata"], got["request_source"]) == (
        "pcb-defects/7", "cam-7", ["pilot"], {"line": "2"}, "inference-sdk")
    assert got["n_predictions"] == len(single["predictions"])
    for index, image_result in enumerate(pair):
        shown = ws.client.get(f"{ws.api}/inferences/{image_result['inference_id']}",
                              params={"image_index": index if len({r['inference_id'] for r in pair}) == 1 else 0})
        assert shown.status_code == 200 and shown.json()["image"]["width"] == (32, 40)[index]
    classified = ws.client.get(f"{ws.api}/inferences/{chosen['inference_id']}").json()
    assert classified["model_id"] == "paint-color/3" and classified["task"] == "classification"
    assert total(ws) == 4


@pytest.mark.any_store
def test_a_full_disk_is_waited_out_like_an_overload_and_nothing_is_lost(tmp_path: Path) -> None:
    """A server below its free-space floor answers 507: the SDK spools, waits as Retry-After says,
    and delivers every logged item exactly once when the server takes writes again (here: the
    same data dir served with no floor, standing in for space freed). The wait asked is lowered
    to a second (`--disk-retry-after`), so the test does not sit out the default's ten."""
    srv = Server(tmp_path / "data", "--min-free-space", "100%", "--disk-retry-after", "1").start()
    try:
        key = srv.initial_key
        refused = httpx.post(f"{srv.url}/api/v1/default/inferences", json={"inferences": []},
                             headers={"Authorization": f"Bearer {key}"})
        assert (refused.status_code, refused.headers["Retry-After"]) == (507, "1")
        client = inferwatch.Client(srv.url, key, workspace="default", spool_dir=tmp_path / "spool",
                                   linger_s=0.01, max_backoff_s=0.5)
        try:
            for _ in range(50):
                client.log(detection(), model_id="m/1")
            assert not client.flush(2)
            assert client.counters.retried > 0 and client.counters.spilled == 50
            assert (client.counters.sent, client.counters.dropped) == (0, 0)
            srv.stop()
            srv.extra_args = ("--min-free-space", "0")
            srv.start(same_port=True)
            assert client.flush(60)
            assert (client.counters.sent, client.counters.dropped) == (50, 0)
        finally:
            client.close()
        assert default_total(srv, key) == 50
    finally:
        srv.stop()


@pytest.mark.any_store
def test_an_overloaded_inferwatch_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    """While the writer holds a huge batch, a server with a tiny queue answers 503: the SDK waits as
    Retry-After says, spools meanwhile, and every logged item arrives exactly once."""
    srv = Server(tmp_path / "data", "--queue-max-rows", "100").start()
    try:
        key = srv.initial_key
        boxes = [{"x": 1.0, "y": 1.0, "width": 1.0, "height": 1.0, "class": "part", "confidence": 0.5}] * 50
        body = gzip.compress(json.dumps({"inferences": [
            {"model_id": "m/big", "result": {"inference_id": f"big-{i}", "predictions": boxes}}
            for i in range(10_000)]}).encode())
        big = threading.Thread(target=lambda: httpx.post(
            f"{srv.url}/api/v1/default/inferences", content=body, timeout=300,
            headers={"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"}))
        big.start()
        # While the server takes in the big batch, /healthz may wait past httpx's default five
        # seconds on a busy machine (it did, on chdb with the cores shared).
        while httpx.get(f"{srv.url}/healthz", timeout=60).json()["queue_rows"] == 0 and big.is_alive():
            time.sleep(0.01)
        client = inferwatch.Client(srv.url, key, workspace="default", spool_dir=tmp_path / "spool",
                                   linger_s=0.01, max_backoff_s=0.5)
        try:
            logged = 0
            while client.counters.retried == 0 and big.is_alive():
                for _ in range(20):
                    client.log(detection(), model_id="m/sdk")
                logged += 20
                time.sleep(0.02)
            big.join()
            assert client.counters.retried > 0, "the server never refused the SDK while the writer was busy"
            assert client.flush(120)
            assert (client.counters.sent, client.counters.dropped) == (logged, 0)
        finally:
            client.close()
        reply = httpx.get(f"{srv.url}/api/v1/default/stats", headers={"Authorization": f"Bearer {key}"},
                          params={"from": "2000-01-01", "model_id": "m/sdk"})
        assert reply.json()["totals"]["inferences"] == logged
    finally:
        srv.stop()
