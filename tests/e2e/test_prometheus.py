"""The per-model series through a real Prometheus server (Debian's `prometheus`, on loopback),
scraping a real inferwatch every half second: what `rate()` and `histogram_quantile()` answer is
checked against what was sent, the cardinality cap is seen by Prometheus, and every panel of the
Grafana dashboard in docs/grafana/ answers from these series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Workspace, ingest, open_workspace
from tests.server import TLS, Server, free_port

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.process  # an inferwatch process of its own, scraped by Prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "inferwatch-models.json"


class Prometheus:
    def __init__(self, folder: Path, target: str, metrics_path: str, key: str) -> None:
        self.port = free_port()
        config = folder / "prometheus.yml"
        # Only this static target: no service discovery, no remote write, nothing leaves loopback.
        config.write_text(json.dumps({
            "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms", "evaluation_interval": "500ms"},
            "scrape_configs": [{
                "job_name": "inferwatch", "metrics_path": metrics_path,
                "authorization": {"type": "Bearer", "credentials": key},
                "static_configs": [{"targets": [target]}],
            }],
        }))
        self.log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10, verify=TLS)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (folder / "prometheus.log").read_text()
            try:
                if self.http.get("/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus did not start")

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        reply = self.http.get("/api/v1/query", params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str, at: float | None = None) -> float | None:
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, expected: float, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.value(expr) == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{expr} never became {expected}; last {self.value(expr)}")

    def targets_up(self) -> bool:
        reply = self.http.get("/api/v1/targets").json()
        return all(t["health"] == "up" for t in reply["data"]["activeTargets"])

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose series name at most 3 models, devices and classes each."""
    srv = Server(tmp_path_factory.mktemp("prom") / "data", "--metrics-max-label-values", "3").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def scraped(capped: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Prometheus]]:
    with open_workspace(capped, "prom") as ws:
        prom = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{capped.port}",
                          f"/api/v1/{ws.slug}/metrics", ws.key)
        try:
            yield ws, prom
        finally:
            prom.stop()


def _item(n: int, model: str, device: str, time_s: float, predictions: list[tuple[str, float]]) -> dict[str, Any]:
    return {"model_id": model, "device_id": device, "inference_id": f"{model}-{device}-{n}",
            "result": {"time": time_s, "image": {"width": 640, "height": 480},
                       "predictions": [{"x": 10, "y": 10, "width": 5, "height": 5, "class": c, "confidence": p}
                                       for c, p in predictions]}}


def _samples(prom: Prometheus, expr: str) -> list[tuple[float, float]]:
    """The raw scraped samples of one series over the last minute."""
    result = prom.query(f"{expr}[1m]")
    assert len(result) == 1, result
    return [(float(t), float(v)) for t, v in result[0]["values"]]


def test_rate_and_quantiles_answer_what_was_sent(scraped: tuple[Workspace, Prometheus]) -> None:
    ws, prom = scraped
    total = 'sum(inferwatch_model_inferences_total{job="inferwatch"})'
    # Before: two devices of one model, and four devices of another (one past the cap of 3).
    before = [_item(i, "pcb/1", f"cam-{i % 2}", 0.04, [("scratch", 0.8)]) for i in range(10)]
    before += [_item(i, "paint/2", f"line-{i % 4}", 0.2, [("drip", 0.6)]) for i in range(8)]
    ingest(ws, before)
    prom.wait_for(total, 18)
    # Then one batch whose figures are known: 6 detections at 0.3 and 6 at 0.9 (4 images with
    # 3 each), half the images timed at 20 ms and half at 100 ms.
    after = [_item(100 + i, "pcb/1", "cam-0", 0.02 if i < 2 else 0.1,
                   [("scratch", 0.3), ("scratch", 0.9 if i < 2 else 0.3), ("dent", 0.9)]) for i in range(4)]
    ingest(ws, after)
    prom.wait_for(total, 22)
    scratch = 'sum(inferwatch_model_predictions_total{model_id="pcb/1", class="scratch"})'
    samples = _samples(prom, 'inferwatch_model_predictions_total{model_id="pcb/1", device_id="cam-0",'
                             ' class="scratch"}')
    jump = next(i for i, (_, v) in enumerate(samples) if v > 5)
    (t1, v1), (t2, v2) = samples[jump - 1], samples[jump]
    assert (v1, v2) == (5, 5 + 8)
    # A window from the last sample before the batch to the first after it: Prometheus does not
    # extrapolate (both ends are samples), so rate() x window is exactly what was sent.
    window_ms = round((t2 - t1) * 1000)
    rate = prom.value(f"sum(rate(inferwatch_model_predictions_total{{class=\"scratch\"}}[{window_ms}ms]))", at=t2)
    assert rate is not None
    assert rate * window_ms / 1000 == pytest.approx(8, rel=1e-9)
    assert prom.value(scratch) == 10 + 8
    # A class first seen in the batch: its series starts there, with what was sent.
    assert prom.value('sum(inferwatch_model_predictions_total{class="dent"})', at=t2) == 4

    # Quantiles of the batch alone (the window holds only its increase): of 12 confidences, six
    # at 0.3 and six at 0.9, the median is the top of the 0.3 bin; of 4 times, half at 20 ms.
    conf = prom.value('histogram_quantile(0.5, sum by (le) (rate(inferwatch_model_confidence_bucket'
                      f'{{model_id="pcb/1"}}[{window_ms}ms])))', at=t2)
    assert conf == pytest.approx(0.3, abs=1e-9)
    conf_p75 = prom.value('histogram_quantile(0.75, sum by (le) (rate(inferwatch_model_confidence_bucket'
                          f'{{model_id="pcb/1"}}[{window_ms}ms])))', at=t2)
    assert conf_p75 == pytest.approx(0.85 + 0.05 * (9 - 6) / 6, abs=1e-9)  # rank 9 in the 0.85-0.9 bin
    seconds = prom.value('histogram_quantile(0.5, sum by (le) (rate(inferwatch_model_inference_seconds_bucket'
                         f'{{model_id="pcb/1"}}[{window_ms}ms])))', at=t2)
    assert seconds == pytest.approx(0.02, abs=1e-9)
    mean = prom.value(f'sum(increase(inferwatch_model_inference_seconds_sum{{model_id="pcb/1"}}[{window_ms}ms]))',
                      at=t2)
    assert mean == pytest.approx(2 * 0.02 + 2 * 0.1, rel=1e-9)


def test_labels_past_the_cap_count_as_other(scraped: tuple[Workspace, Prometheus]) -> None:
    ws, prom = scraped
    ingest(ws, [_item(i, f"extra/{i}", "cam-0", 0.01, [(f"class-{i}", 0.5)]) for i in range(3)])
    prom.wait_for('sum(inferwatch_model_inferences_total{job="inferwatch"})', 25)
    devices = {r["metric"].get("device_id") for r in prom.query("inferwatch_model_inferences_total")}
    # paint/2 sent line-0..3: the fourth device seen (after cam-1, cam-0, ...) is `other`.
    assert "other" in devices and len(devices) == 4
    models = {r["metric"]["model_id"] for r in prom.query("inferwatch_model_inferences_total")}
    assert models == {"pcb/1", "paint/2", "extra/0", "other"}
    assert prom.value('sum(inferwatch_model_inferences_total{model_id="other"})') == 2
    classes = {r["metric"]["class"] for r in prom.query("inferwatch_model_predictions_total")}
    assert len(classes) == 4 and "other" in classes
    assert prom.targets_up()


def test_every_dashboard_panel_answers(scraped: tuple[Workspace, Prometheus]) -> None:
    _, prom = scraped
    dashboard = json.loads(DASHBOARD.read_text())
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "model", "device"]
    for variable in dashboard["templating"]["list"][1:]:
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
        assert match, variable
        metric, label = match.groups()
        assert prom.query(f"count by ({label}) ({metric})"), variable["name"]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        query = expr.replace("$model", ".*").replace("$device", ".*").replace("$__rate_interval", "1m")
        assert prom.query(query), f"no answer for {query}"


def test_scrape_needs_the_workspace_key(capped: Server, scraped: tuple[Workspace, Prometheus]) -> None:
    ws, _ = scraped
    path = f"{capped.url}/api/v1/{ws.slug}/metrics"
    assert httpx.get(path, verify=TLS).status_code == 401
    with open_workspace(capped, "stranger") as stranger:
        assert stranger.client.get(path).status_code == 403
        own = stranger.client.get(f"{stranger.api}/metrics")
        assert own.status_code == 200 and "pcb/1" not in own.text
    reply = ws.client.get(f"{ws.api}/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    assert 'inferwatch_model_inferences_total{device_id="cam-0",model_id="pcb/1"}' in reply.text
