"""Proxy benchmark: the latency `inferwatch proxy` adds to an inference request, against calling
the inference server directly, in one run.

Run from the repository root (bench/sdk.py runs it too, after the `Client.log` figures):

    .venv/bin/python bench/sdk_proxy.py [--requests 2000]

Starts the real server, a stand-in inference server (tests/clients/fake_upstream.py, a process of
its own) and `inferwatch proxy` in front of it recording into the server. One client thread then
sends the request `InferenceHTTPClient.infer` sends for a 640x480 JPEG (`POST
/infer/object_detection`, base64 image in JSON) over two keep-alive connections, one to the
upstream and one to the proxy, alternating so both see the same machine state. Prints p50 and
p99 of each and their difference, and checks that every proxied inference reached inferwatch.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402
from tests.server import Server, free_port  # noqa: E402

WARMUP = 200


@dataclass
class ProxyFigures:
    requests: int
    direct_us: list[float]
    proxied_us: list[float]
    recorded: int
    proxy_cpu_us: float  # CPU time of the proxy process per proxied request (robust to a busy machine)

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    def lines(self) -> list[str]:
        d50, d99 = self.pct(self.direct_us, 0.5), self.pct(self.direct_us, 0.99)
        p50, p99 = self.pct(self.proxied_us, 0.5), self.pct(self.proxied_us, 0.99)
        pairs = statistics.median(p - d for p, d in zip(self.proxied_us, self.direct_us, strict=True))
        return [
            f"inferwatch proxy benchmark: {self.requests:,} requests each way, POST /infer/object_detection"
            " (640x480 JPEG), one client thread, keep-alive",
            f"  direct to the inference server  p50 {d50 / 1000:6.2f} ms, p99 {d99 / 1000:6.2f} ms",
            f"  through inferwatch proxy        p50 {p50 / 1000:6.2f} ms, p99 {p99 / 1000:6.2f} ms",
            f"  added by the proxy              p50 {(p50 - d50) / 1000:6.2f} ms, p99 {(p99 - d99) / 1000:6.2f} ms"
            f" (median of per-pair differences {pairs / 1000:.2f} ms)",
            f"  proxy CPU per request           {self.proxy_cpu_us / 1000:6.2f} ms (user + system, whole process)",
            f"  recorded in inferwatch          {self.recorded:,} of {self.requests + WARMUP:,} proxied inferences",
        ]


def _request_body() -> bytes:
    # Blurred noise compresses about as a camera frame does: a 78 kB JPEG, a 104 kB request.
    frame = Image.merge("RGB", [Image.effect_noise((640, 480), 80).filter(ImageFilter.GaussianBlur(1.2))
                                for _ in range(3)])
    jpeg = io.BytesIO()
    frame.save(jpeg, format="JPEG", quality=85)
    return json.dumps({"api_key": "roboflow-key", "model_id": "pcb-defects/7", "confidence": 0.4,
                       "image": {"type": "base64", "value": base64.b64encode(jpeg.getvalue()).decode()}}).encode()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_post(conn: http.client.HTTPConnection, body: bytes) -> float:
    start = time.perf_counter_ns()
    conn.request("POST", "/infer/object_detection", body=body, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    answer = reply.read()
    took = (time.perf_counter_ns() - start) / 1000
    if reply.status != 200 or b"inference_id" not in answer:
        raise RuntimeError(f"HTTP {reply.status}: {answer[:200]!r}")
    return took


def proxy_latency(server: Server, api_key: str, workspace: str, requests: int, workdir: Path) -> ProxyFigures:
    """Runs the upstream and the proxy against `server`, measures, and stops them again."""
    up_port, proxy_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upstream = subprocess.Popen([sys.executable, "-m", "tests.clients.fake_upstream", "--port", str(up_port)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL)
        procs.append(upstream)
        _wait_listening(up_port, upstream, "the stand-in inference server")
        proxy = subprocess.Popen(
            [sys.executable, "-m", "inferwatch", "proxy", "--upstream", f"http://127.0.0.1:{up_port}",
             "--server", server.url, "--api-key", api_key, "--workspace", workspace,
             "--listen", f"127.0.0.1:{proxy_port}", "--spool-dir", str(workdir / "proxy-spool")],
            cwd=ROOT, stdout=subprocess.DEVNULL)
        procs.append(proxy)
        _wait_listening(proxy_port, proxy, "inferwatch proxy")

        body = _request_body()
        direct = http.client.HTTPConnection("127.0.0.1", up_port)
        proxied = http.client.HTTPConnection("127.0.0.1", proxy_port)
        for _ in range(WARMUP):
            _timed_post(direct, body)
            _timed_post(proxied, body)
        direct_us, proxied_us = [], []
        cpu_before = _cpu_seconds(proxy.pid)
        for i in range(requests):  # alternate which goes first, so neither always follows the other
            if i % 2:
                direct_us.append(_timed_post(direct, body))
                proxied_us.append(_timed_post(proxied, body))
            else:
                proxied_us.append(_timed_post(proxied, body))
                direct_us.append(_timed_post(direct, body))
        cpu_us = (_cpu_seconds(proxy.pid) - cpu_before) * 1e6 / requests
        direct.close()
        proxied.close()

        expected = requests + WARMUP
        recorded = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and recorded < expected:
            recorded = httpx.get(f"{server.url}/api/v1/{workspace}/stats",
                                 params={"from": "2000-01-01", "model_id": "pcb-defects/7"},
                                 headers={"Authorization": f"Bearer {api_key}"}).json()["totals"]["inferences"]
            time.sleep(0.2)
        return ProxyFigures(requests, direct_us, proxied_us, recorded, cpu_us)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="inferwatch-bench-proxy-"))
    server = Server(workdir / "data").start()
    try:
        figures = proxy_latency(server, server.initial_key, "default", args.requests, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("```")
    print("\n".join(figures.lines()))
    print("```")


if __name__ == "__main__":
    main()
