"""A full writer queue is refused with 503 + Retry-After, and nothing of the refused batch lands."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own


@pytest.fixture
def small_queue(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", "--queue-max-rows", "100").start()
    yield srv
    srv.stop()


def _items(prefix: str, n: int, predictions: int) -> list[dict[str, object]]:
    boxes = [{"x": 10.0, "y": 10.0, "width": 5.0, "height": 5.0, "confidence": 0.5, "class": "part"}] * predictions
    return [{"model_id": "m/1", "result": {"inference_id": f"{prefix}-{i}", "predictions": boxes}} for i in range(n)]


def test_full_queue_answers_503_and_drops_nothing_acknowledged(small_queue: Server) -> None:
    auth = {"Authorization": f"Bearer {small_queue.initial_key}"}
    url = f"{small_queue.url}/api/v1/default/inferences"
    # A batch larger than the whole queue is still let in when the queue is empty; while the
    # writer holds it, every other batch must be refused.
    body = gzip.compress(json.dumps({"inferences": _items("big", 10_000, 50)}).encode())
    big = httpx.Client(timeout=120).build_request("POST", url, content=body,
                                                  headers={**auth, "Content-Encoding": "gzip"})
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(httpx.Client(timeout=120).send(big)))
    sender.start()
    refused = None
    with httpx.Client(timeout=30) as client:
        while sender.is_alive() and refused is None:
            if client.get(f"{small_queue.url}/healthz").json()["queue_rows"] > 0:
                reply = client.post(url, json={"inferences": _items("small", 5, 1)}, headers=auth)
                if reply.status_code == 503:
                    refused = reply
        sender.join()
        assert answers[0].status_code == 200
        assert refused is not None, "no request was refused while the writer was busy"
        assert refused.headers["Retry-After"].isdigit()
        assert refused.json()["error"] == "Overloaded"
        stats = client.get(f"{small_queue.url}/api/v1/default/stats", headers=auth,
                           params={"from": "2000-01-01", "to": "2100-01-01"}).json()
        small = client.get(f"{small_queue.url}/api/v1/default/inferences/small-0", headers=auth)
        metrics = client.get(f"{small_queue.url}/metrics").text
    assert stats["totals"]["inferences"] == 10_000
    assert small.status_code == 404
    assert "inferwatch_ingest_rejected_total 0.0" not in metrics
