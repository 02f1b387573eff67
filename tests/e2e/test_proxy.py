"""The transparent proxy, end to end: Roboflow's real `InferenceHTTPClient` (inference-sdk 1.8.3,
installed by `make test` into .venv/roboflow-inference) talks to `inferwatch proxy` (a process,
as users run it) in front of a real HTTP server answering like an inference server
(tests/clients/fake_upstream.py); the ids it gets back take metadata through inferwatch's
Roboflow route and are read back through the query API. Also the proxy mounted in
`inferwatch serve --proxy-upstream`, forwarding exactness, and both kinds of outage."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.clients.fake_upstream import FakeUpstream
from tests.conftest import Workspace, open_workspace
from tests.server import TLS, Server, free_port

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

ROOT = Path(__file__).resolve().parents[2]
INSTALL = Path(os.environ.get("INFERWATCH_INFERENCE_CLIENT", ROOT / ".venv" / "roboflow-inference"))


def _inference_sdk() -> Any:
    """Roboflow's client, from where `make test` installs it (appended to the path, so this
    environment's own packages come first)."""
    assert (INSTALL / "inference_sdk").is_dir(), (
        f"inference-sdk is not installed in {INSTALL}: run `make test` (or `make client-deps`)")
    if str(INSTALL) not in sys.path:
        sys.path.append(str(INSTALL))
    import inference_sdk

    return inference_sdk


def http_client(api_url: str, api_key: str, *, batch: int = 1, transport: str = "legacy") -> Any:
    sdk = _inference_sdk()
    client = sdk.InferenceHTTPClient(api_url=api_url, api_key=api_key)
    client.configure(sdk.InferenceConfiguration(max_batch_size=batch, api_key_transport=transport))
    return client


def image(width: int, height: int, color: str = "white") -> Image.Image:
    return Image.new("RGB", (width, height), color)


class ProxyProcess:
    """`inferwatch proxy` in a subprocess on a free loopback port."""

    def __init__(self, upstream: str, server: str, api_key: str, spool: Path) -> None:
        self.port = free_port()
        self.log_path = spool.parent / f"proxy-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inferwatch", "proxy", "--upstream", upstream, "--server", server,
             "--api-key", api_key, "--listen", f"127.0.0.1:{self.port}", "--spool-dir", str(spool)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited: {self.log_path.read_text()}")
            try:
                httpx.get(f"{self.url}/info", timeout=1, verify=TLS)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"proxy did not start: {self.log_path.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@contextmanager
def running_proxy(upstream: str, server: str, api_key: str, spool: Path) -> Iterator[ProxyProcess]:
    proxy = ProxyProcess(upstream, server, api_key, spool)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def recorded(server: Server) -> Iterator[Workspace]:
    """The workspace the module's proxy records into."""
    with open_workspace(server, "proxy") as workspace:
        yield workspace


@pytest.fixture(scope="module")
def proxy(upstream: FakeUpstream, server: Server, recorded: Workspace,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    with running_proxy(upstream.url, server.url, recorded.key, tmp_path_factory.mktemp("proxy") / "spool") as p:
        yield p


def arrived(ws: Workspace, inference_id: str, image_index: int | None = None, timeout: float = 30) -> dict[str, Any]:
    """The inference once inferwatch has it (the proxy records in the background)."""
    params = {} if image_index is None else {"image_index": image_index}
    deadline = time.monotonic() + timeout
    while True:
        reply = ws.client.get(f"{ws.api}/inferences/{inference_id}", params=params)
        if reply.status_code == 200 and (image_index is None or reply.json()["image_count"] > image_index):
            body: dict[str, Any] = reply.json()
            return body
        assert time.monotonic() < deadline, f"{inference_id} never arrived: {reply.status_code} {reply.text}"
        time.sleep(0.1)


def attach(ws: Workspace, ids: list[str], name: str, value: str) -> None:
    """Metadata as a Roboflow script attaches it: key in the body, Roboflow's route."""
    reply = httpx.post(f"{str(ws.client.base_url).rstrip('/')}/{ws.slug}/inference-stats/metadata", verify=TLS,
                       json={"api_key": ws.key, "data": [{"inference_ids": ids, "field_name": name,
                                                          "field_value": value}]})
    assert reply.status_code == 200, reply.text


# -- the seed's flow through the proxy, with the real client ------------------------------------

def test_v1_detection_and_classification_are_recorded_and_take_metadata(
        proxy: ProxyProcess, recorded: Workspace, upstream: FakeUpstream) -> None:
    client = http_client(proxy.url, "roboflow-key")
    detected = client.infer(image(320, 240), model_id="pcb-defects/7")
    classified = client.infer(image(64, 48, "red"), model_id="paint-color/3")
    assert ("POST", "/infer/object_detection", "") in upstream.seen
    assert ("POST", "/infer/classification", "") in upstream.seen
    assert detected["image"] == {"width": 320, "height": 240}
    assert classified["top"] == "red"

    attach(recorded, [detected["inference_id"]], "camera_location", "canada")
    attach(recorded, [classified["inference_id"]], "line", "3")

    stored = arrived(recorded, detected["inference_id"])
    assert stored["model_id"] == "pcb-defects/7"
    assert stored["task"] == "object-detection"
    assert stored["device_id"] == "127.0.0.1"
    assert stored["image"] == {"width": 320, "height": 240}
    assert [(p["class"], p["confidence"]) for p in stored["predictions"]] == [
        (p["class"], p["confidence"]) for p in detected["predictions"]]
    assert stored["metadata"] == {"camera_location": "canada"}

    stored = arrived(recorded, classified["inference_id"])
    assert stored["model_id"] == "paint-color/3"
    assert stored["task"] == "classification"
    assert stored["classes"] == ["red"]
    assert stored["metadata"] == {"line": "3"}

    listed = recorded.client.get(f"{recorded.api}/inferences", params={"meta.camera_location": "canada"}).json()
    assert [row["inference_id"] for row in listed["inferences"]] == [detected["inference_id"]]


def test_v1_batch_of_two_images_is_one_request_and_two_inferences(
        proxy: ProxyProcess, recorded: Workspace, upstream: FakeUpstream) -> None:
    client = http_client(proxy.url, "roboflow-key", batch=2)
    before = len(upstream.seen)
    results = client.infer([image(320, 240), image(200, 100)], model_id="pcb-defects/7")
    assert [s for s in upstream.seen[before:] if s[1] == "/infer/object_detection"] == [
        ("POST", "/infer/object_detection", "")]
    assert len(results) == 2
    shared = results[0]["inference_id"]
    assert results[1]["inference_id"] == shared  # one request, one id: images told apart by index

    attach(recorded, [shared], "batch", "morning")
    first, second = arrived(recorded, shared, 0), arrived(recorded, shared, 1)
    assert first["image"] == {"width": 320, "height": 240}
    assert second["image"] == {"width": 200, "height": 100}
    assert first["image_count"] == 2
    assert first["metadata"] == second["metadata"] == {"batch": "morning"}


def test_v0_legacy_route_detection_classification_and_a_batch(
        proxy: ProxyProcess, recorded: Workspace, upstream: FakeUpstream) -> None:
    client = http_client(proxy.url, "roboflow-key")
    client.select_api_v0()
    before = len(upstream.seen)
    detected = client.infer(image(320, 240), model_id="pcb-defects/7")
    classified = client.infer(image(50, 40), model_id="paint-color/3")
    pair = client.infer([image(100, 80), image(90, 70)], model_id="pcb-defects/7")  # v0: one request each
    legacy = [s for s in upstream.seen[before:] if s[1] in ("/pcb-defects/7", "/paint-color/3")]
    assert len(legacy) == 4
    assert all("api_key=roboflow-key" in query for _, _, query in legacy)

    ids = [detected["inference_id"], classified["inference_id"]] + [r["inference_id"] for r in pair]
    attach(recorded, ids, "route", "v0")
    stored = [arrived(recorded, i) for i in ids]
    assert [s["model_id"] for s in stored] == ["pcb-defects/7", "paint-color/3", "pcb-defects/7", "pcb-defects/7"]
    assert [s["task"] for s in stored] == ["object-detection", "classification", "object-detection",
                                           "object-detection"]
    assert [s["image"]["width"] for s in stored] == [320, 50, 100, 90]
    assert all(s["metadata"] == {"route": "v0"} for s in stored)


def test_an_answer_without_inference_id_gets_one_and_it_works_for_metadata(
        proxy: ProxyProcess, recorded: Workspace) -> None:
    """The fake server's `anon-` models answer without an id, like a server that sets none."""
    client = http_client(proxy.url, "roboflow-key", batch=2)
    single = client.infer(image(30, 20), model_id="anon-widgets/1")
    pair = client.infer([image(30, 20), image(40, 30)], model_id="anon-widgets/1")
    client.select_api_v0()
    legacy = client.infer(image(30, 20), model_id="anon-widgets/2")
    assert single["inference_id"] and legacy["inference_id"]
    assert pair[0]["inference_id"] == pair[1]["inference_id"]
    assert len({single["inference_id"], pair[0]["inference_id"], legacy["inference_id"]}) == 3

    attach(recorded, [single["inference_id"], pair[0]["inference_id"], legacy["inference_id"]], "anon", "yes")
    assert arrived(recorded, single["inference_id"])["metadata"] == {"anon": "yes"}
    assert arrived(recorded, pair[0]["inference_id"], 1)["image"] == {"width": 40, "height": 30}
    assert arrived(recorded, legacy["inference_id"])["model_id"] == "anon-widgets/2"


def test_device_header_and_source_are_recorded(proxy: ProxyProcess, recorded: Workspace) -> None:
    png = io.BytesIO()
    image(12, 10).save(png, format="PNG")
    body = {"model_id": "pcb-defects/7", "api_key": "roboflow-key", "source": "line-3-app",
            "image": {"type": "base64", "value": base64.b64encode(png.getvalue()).decode()}}
    reply = httpx.post(f"{proxy.url}/infer/object_detection", json=body, headers={"X-Device-Id": "edge-cam-7"})
    assert reply.status_code == 200
    stored = arrived(recorded, reply.json()["inference_id"])
    assert stored["device_id"] == "edge-cam-7"
    assert stored["request_source"] == "line-3-app"


def test_workflow_runs_record_the_model_outputs_they_carry(proxy: ProxyProcess, recorded: Workspace) -> None:
    client = http_client(proxy.url, "roboflow-key")
    outputs = client.run_workflow(workspace_name="acme", workflow_id="pcb-check",
                                  images={"image": [image(64, 64), image(32, 16)]})
    assert len(outputs) == 2
    ids = [row["model"]["inference_id"] for row in outputs]
    attach(recorded, ids, "workflow", "pcb-check")
    stored = [arrived(recorded, i) for i in ids]
    assert [s["model_id"] for s in stored] == ["pcb-defects/7", "pcb-defects/7"]
    assert [s["image"] for s in stored] == [{"width": 64, "height": 64}, {"width": 32, "height": 16}]
    assert all(s["metadata"] == {"workflow": "pcb-check"} for s in stored)


# -- forwarding is exact ------------------------------------------------------------------------

@pytest.mark.any_store
def test_requests_and_answers_pass_untouched(proxy: ProxyProcess, upstream: FakeUpstream,
                                             recorded: Workspace) -> None:
    body = bytes(range(256)) * 40
    headers = {"X-Custom": "a, b", "Authorization": "Bearer roboflow-key", "Content-Type": "application/octet-stream"}
    via_proxy = httpx.post(f"{proxy.url}/echo?x=1&y=%20two&x=3", content=body, headers=headers).json()
    direct = httpx.post(f"{upstream.url}/echo?x=1&y=%20two&x=3", content=body, headers=headers).json()
    assert via_proxy["path"] == direct["path"] == "/echo?x=1&y=%20two&x=3"
    assert via_proxy["body"] == direct["body"]
    # The same headers (the Host is the upstream's own), hop-by-hop ones excepted.
    seen = {k.lower(): v for k, v in via_proxy["headers"]}
    expected = {k.lower(): v for k, v in direct["headers"]}
    assert seen == expected

    def chunks() -> Iterator[bytes]:
        yield b"first "
        yield b"second"

    chunked = httpx.post(f"{proxy.url}/echo", content=chunks()).json()  # Transfer-Encoding: chunked
    assert base64.b64decode(chunked["body"]) == b"first second"

    streamed = httpx.get(f"{proxy.url}/stream?chunks=5")
    assert streamed.text == "".join(f"chunk {i}\n" for i in range(5))

    missing = httpx.get(f"{proxy.url}/no/such/route")
    assert missing.status_code == 404
    assert missing.json() == {"message": "no route /no/such/route"}

    loaded = httpx.post(f"{proxy.url}/model/add", json={"model_id": "pcb-defects/7", "api_key": "k"})
    assert loaded.status_code == 200 and "models" in loaded.json()  # not an inference: not recorded


@pytest.mark.any_store
def test_upstream_down_answers_502_with_a_clear_json_error(server: Server, recorded: Workspace,
                                                          tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with running_proxy(closed, server.url, recorded.key, tmp_path / "spool") as down:
        reply = httpx.post(f"{down.url}/infer/object_detection", json={"model_id": "m/1", "image": []})
        assert reply.status_code == 502
        assert reply.headers["content-type"] == "application/json"
        error = reply.json()
        assert error["error"] == "Bad gateway"
        assert closed in error["detail"]
        client = http_client(down.url, "roboflow-key")
        client.select_api_v0()
        with pytest.raises(Exception, match="502"):
            client.infer(image(10, 10), model_id="pcb-defects/7")


@pytest.mark.any_store
def test_an_upstream_breaking_off_its_answer_is_a_502(proxy: ProxyProcess) -> None:
    reply = httpx.post(f"{proxy.url}/cut-off/1?api_key=k", content=b"not an image")
    assert reply.status_code == 502
    assert reply.json()["error"] == "Bad gateway"
    assert httpx.get(f"{proxy.url}/info").status_code == 200  # and the proxy carries on


@pytest.mark.any_store
def test_a_key_inferwatch_refuses_stops_the_proxy_at_start(server: Server, upstream: FakeUpstream,
                                                           tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "inferwatch", "proxy", "--upstream", upstream.url, "--server", server.url,
         "--api-key", "not-a-key", "--listen", f"127.0.0.1:{free_port()}", "--spool-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "refused the API key" in done.stderr


@pytest.mark.any_store
def test_inferwatch_down_never_fails_an_inference_and_the_results_arrive_later(
        own_server: Server, upstream: FakeUpstream, tmp_path: Path) -> None:
    with open_workspace(own_server, "outage") as ws, \
            running_proxy(upstream.url, own_server.url, ws.key, tmp_path / "spool") as p:
        client = http_client(p.url, "roboflow-key")
        first = client.infer(image(20, 20), model_id="pcb-defects/7")
        arrived(ws, first["inference_id"])  # the proxy's recorder knows its workspace by now

        own_server.stop()
        during = [client.infer(image(20 + i, 20), model_id="pcb-defects/7") for i in range(3)]
        client.select_api_v0()
        during.append(client.infer(image(30, 30), model_id="paint-color/3"))
        assert all(r["inference_id"] for r in during)

        own_server.start(same_port=True)
        for result in during:
            assert arrived(ws, result["inference_id"], timeout=60)["image"] == result["image"]


# -- mounted in the server ----------------------------------------------------------------------

def test_mounted_proxy_records_in_the_workspace_of_the_key_else_the_default(
        upstream: FakeUpstream, tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", "--proxy-upstream", upstream.url, "--proxy-workspace", "default").start()
    try:
        with open_workspace(srv, "keyed") as keyed, open_workspace(srv, "other") as other:
            base = f"{srv.url}/proxy"
            in_body = http_client(base, keyed.key).infer(image(40, 30), model_id="pcb-defects/7")
            as_bearer = http_client(base, other.key, transport="header").infer(image(41, 30),
                                                                               model_id="paint-color/3")
            v0 = http_client(base, keyed.key)
            v0.select_api_v0()
            in_query = v0.infer(image(42, 30), model_id="anon-widgets/3")
            unknown = http_client(base, "a-roboflow-key").infer(image(43, 30), model_id="pcb-defects/7")
            # A result inferwatch refuses to store is still the caller's answer, untouched.
            refused = http_client(base, keyed.key).infer(image(44, 30), model_id="bad-scores/1")
            assert refused["predictions"][0]["confidence"] == 1.7

            with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.initial_key}"},
                              verify=TLS) as default_client:
                default = Workspace("default", srv.initial_key, default_client)
                assert arrived(keyed, in_body["inference_id"])["model_id"] == "pcb-defects/7"
                assert arrived(other, as_bearer["inference_id"])["model_id"] == "paint-color/3"
                assert arrived(keyed, in_query["inference_id"])["model_id"] == "anon-widgets/3"
                assert arrived(default, unknown["inference_id"])["image"] == {"width": 43, "height": 30}
                attach(keyed, [in_body["inference_id"]], "camera", "mounted")
                assert arrived(keyed, in_body["inference_id"])["metadata"] == {"camera": "mounted"}
                missing = keyed.client.get(f"{keyed.api}/inferences/{refused['inference_id']}")
                assert missing.status_code == 404
                for ws, mine in ((keyed, 2), (other, 1), (default, 1)):
                    assert len(ws.client.get(f"{ws.api}/inferences").json()["inferences"]) == mine

            reply = httpx.get(f"{srv.url}/proxy/info")
            assert reply.json()["name"] == "Roboflow Inference Server"
            assert reply.headers.get_list("date") and len(reply.headers.get_list("date")) == 1
    finally:
        srv.stop()
