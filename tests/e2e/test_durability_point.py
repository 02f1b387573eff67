"""Where an acknowledged batch is on disk, on the embedded store: strace is attached to the
running server, and the answer to an ingest request is sent only after DuckDB's `fdatasync` of its write-ahead
log returned (docs/reliability.md, "Acknowledged means durable"). An answer sent before the
commit, or a commit that did not sync the log, fails the test. The ClickHouse store's durability
point is a different one (its parts, without fsync by default; see the same document)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.server import TLS, Server

pytestmark = pytest.mark.process  # starts an inferwatch process under strace

# What the trace shows: `PID syscall(fd<what>, ...) = result`, or a call cut in two while another
# thread ran: `PID syscall(... <unfinished ...>` and later `PID <... syscall resumed>...) = result`.
_SYNC_DONE = re.compile(r"(?:fdatasync|fsync)\(\d+<([^>]+)>\)\s+= 0|<\.\.\. (?:fdatasync|fsync) resumed>.*= 0")
_SYNC_START = re.compile(r"^(\d+) (?:fdatasync|fsync)\(\d+<([^>]+)>")


def _synced_log(lines: list[str], start: int, end: int) -> bool:
    """Whether a sync of DuckDB's log completed between lines `start` and `end` of the trace."""
    pending: dict[str, str] = {}  # pid -> file of its unfinished sync
    for line in lines[start:end]:
        if (begun := _SYNC_START.match(line)) and "<unfinished" in line:
            pending[begun.group(1)] = begun.group(2)
            continue
        done = _SYNC_DONE.search(line)
        if done is None:
            continue
        path = done.group(1) or pending.get(line.split(" ", 1)[0], "")
        if path.endswith(".wal"):
            return True
    return False


def test_an_ingest_answer_is_sent_after_the_log_is_synced(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is installed by `make test`"
    trace = tmp_path / "trace.txt"
    server = Server(tmp_path / "data").start()
    # Attached to the running server (every thread), so stopping the server ends the trace too.
    tracer = subprocess.Popen([strace, "-f", "-p", str(server.pid), "-qq", "-yy", "-s", "512", "-o", str(trace),
                               "-e", "trace=fdatasync,fsync,recvfrom,read,sendto,write,writev,sendmsg"])
    try:
        headers = {"Authorization": f"Bearer {server.initial_key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30, verify=TLS) as client:
            deadline = time.monotonic() + 30
            while "/healthz" not in (trace.read_text(errors="replace") if trace.exists() else ""):
                assert time.monotonic() < deadline, "strace did not attach"
                client.get("/healthz")  # seen in the trace once strace is attached
                time.sleep(0.1)
            markers = [f"durable-{n}" for n in range(3)]
            for marker in markers:
                reply = client.post("/api/v1/default/inferences", json={"inferences": [
                    {"model_id": "m/1", "inference_id": marker, "result": {"predictions": []}}]})
                assert reply.status_code == 200, reply.text
    finally:
        server.stop()
        try:
            tracer.wait(30)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
    lines = trace.read_text(errors="replace").splitlines()
    for marker in markers:
        # The request arriving, and the first bytes of its answer leaving, on a TCP socket.
        received = next(i for i, line in enumerate(lines) if marker in line and "TCP" in line
                        and re.search(r"\b(?:recvfrom|read)\(", line))
        answered = next(i for i, line in enumerate(lines) if i > received and "TCP" in line
                        and "HTTP/1.1 200" in line)
        assert any(marker in line for line in lines[answered:answered + 3]), "the answer found is another's"
        assert _synced_log(lines, received, answered), (
            f"the answer to {marker} left before DuckDB's log was synced:\n" + "\n".join(lines[received:answered + 1]))
