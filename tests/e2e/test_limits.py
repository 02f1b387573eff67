"""Per-key rate limit (429) and read deadlines for slow clients (slow-loris), on real servers."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EVER, Workspace, item, load, open_workspace
from tests.server import TLS, Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

# -- rate limit -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A burst of 3 per key, then one request per 100 s: the 4th request in a row is refused.
    The rate comes from the environment, the burst from the flag: both ways must work."""
    srv = Server(tmp_path_factory.mktemp("limited") / "data", "--rate-limit-burst", "3",
                 env={"INFERWATCH_RATE_LIMIT": "0.01"}).start()
    yield srv
    srv.stop()


def _report_with_keys_per_result(key: str) -> dict[str, Any]:
    """A captured report of the inference server, its key named by each result (none at the top)."""
    body: dict[str, Any] = load("pingback-tiny")
    body["api_key"] = None
    for result in body["inference_results"]:
        result["inference"]["request"]["api_key"] = key
    return body


def test_a_key_past_its_rate_gets_429_with_retry_after_and_writes_nothing(limited: Server) -> None:
    with open_workspace(limited, "rl") as ws, open_workspace(limited, "rl2") as other:
        for _ in range(3):
            assert ws.client.get(f"{ws.api}/stats", params=EVER).status_code == 200
        for reply in (
            ws.client.get(f"{ws.api}/stats", params=EVER),
            ws.client.post(f"{ws.api}/inferences", json={"inferences": [item("refused")]}),
            # the key in the body (Roboflow's metadata call) counts the same
            httpx.post(f"{limited.url}/{ws.slug}/inference-stats/metadata", verify=TLS, json={
                "api_key": ws.key, "data": [{"inference_ids": ["refused"], "field_name": "f", "field_value": "v"}]}),
            # and so does a report of the inference server naming the key per result
            httpx.post(f"{limited.url}/inference-stats", verify=TLS, json=_report_with_keys_per_result(ws.key)),
        ):
            assert reply.status_code == 429, reply.text
            assert reply.json()["error"] == "Too many requests"
            assert int(reply.headers["Retry-After"]) >= 1
        # Another key has its own bucket.
        for _ in range(3):
            assert other.client.get(f"{other.api}/stats", params=EVER).status_code == 200
        # A wrong key is still 401, not 429: it has no bucket to spend.
        wrong = httpx.get(f"{limited.url}{ws.api}/stats", headers={"Authorization": "Bearer not-a-key-123"})
        assert wrong.status_code == 401
        # Nothing of the refused requests was kept (read with a rotated key, which starts a new bucket).
        new_key = limited.admin("POST", f"/workspaces/{ws.slug}/rotate-key").json()["api_key"]
        fresh = httpx.get(f"{limited.url}{ws.api}/stats", params=EVER, verify=TLS,
                          headers={"Authorization": f"Bearer {new_key}"})
        assert fresh.status_code == 200
        assert fresh.json()["totals"]["inferences"] == 0
        fields = httpx.get(f"{limited.url}{ws.api}/metadata/fields", verify=TLS,
                           headers={"Authorization": f"Bearer {new_key}"})
        assert fields.json()["fields"] == []


def test_no_rate_limit_by_default(ws: Workspace) -> None:
    """The shared server runs with the defaults: a key may send far past any burst."""
    replies = [ws.client.get(f"{ws.api}/metadata/fields").status_code for _ in range(150)]
    assert replies == [200] * 150


# -- slow clients -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Headers must arrive within 1 s, a body within 2 s of its headers."""
    srv = Server(tmp_path_factory.mktemp("strict") / "data", "--header-timeout", "1",
                 "--body-timeout", "2").start()
    yield srv
    srv.stop()


def trickle(server: Server, head: bytes, tail: bytes, step_s: float = 0.1) -> tuple[bool, bytes]:
    """Sends `head` at once, then `tail` a byte every `step_s`, reading whatever the server says.

    Returns whether the server cut the connection before the whole request was sent, and what
    it answered. `tail` is long enough that sending it takes far longer than the server's deadline.
    """
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        for byte in tail:
            try:
                readable, _, _ = select.select([sock], [], [], step_s)
                if readable:
                    chunk = sock.recv(65536)
                    answer += chunk
                    if not chunk:
                        return True, answer
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                # Closing a socket with unread bytes sends a reset, which may overtake the 408.
                return True, answer
        return False, answer


def test_a_client_trickling_its_headers_is_cut_off_while_others_are_served(strict: Server) -> None:
    with open_workspace(strict, "slow") as ws:
        served: list[int] = []

        def normal_clients() -> None:
            for n in range(5):
                served.append(ws.client.post(f"{ws.api}/inferences",
                                             json={"inferences": [item(f"fast-{n}")]}).status_code)

        others = threading.Thread(target=normal_clients)
        others.start()
        # 300 header bytes at 10 a second would take 30 s; the deadline is 1 s.
        cut, answer = trickle(strict, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 300 + b"\r\n\r\n")
        others.join()
        assert cut, "the server waited for the whole trickled request"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
        assert served == [200] * 5
        assert ws.client.get(f"{ws.api}/stats", params=EVER).json()["totals"]["inferences"] == 5


def test_a_client_trickling_its_body_is_cut_off_and_nothing_is_written(strict: Server) -> None:
    with open_workspace(strict, "slowbody") as ws:
        body = b'{"inferences": [{"model_id": "m", "inference_id": "slow", "result": {}}]}' + b" " * 400
        head = (f"POST {ws.api}/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ws.key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        cut, answer = trickle(strict, head, body)
        assert cut, "the server waited for the whole trickled body"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
        assert ws.client.get(f"{ws.api}/stats", params=EVER).json()["totals"]["inferences"] == 0
        # The same body sent at once is read and stored: the deadline is what cut the slow one.
        assert ws.client.post(f"{ws.api}/inferences", content=body,
                              headers={"Content-Type": "application/json"}).status_code == 200


def test_a_connection_that_never_sends_is_closed(strict: Server) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        answer = b""
        while chunk := sock.recv(65536):  # returns b"" once the server closes; times out if it never does
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_kept_alive_connection_serves_several_requests_within_the_deadlines(strict: Server, tmp_path: Path) -> None:
    """The header deadline is per request: a connection reused for a while is not cut while it works."""
    with httpx.Client(base_url=strict.url, verify=TLS) as client:
        for _ in range(20):
            assert client.get("/healthz").status_code == 200
