"""The writer runs DuckDB on its own thread while it has ingest work (`Store.ingesting`), and gives
the engine its threads back once it is idle; upkeep and other calls alone keep them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from inferwatch.ingest.writer import Writer
from inferwatch.store.base import Store
from inferwatch.store.duckdb import DuckDBStore


def threads(store: Store) -> int:
    assert isinstance(store, DuckDBStore)
    return int(store._cursor().execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(str(tmp_path / "threads.duckdb"))
    opened.migrate()
    opened._cursor().execute("SET threads = 3")  # the engine's own count, whatever the machine
    yield opened
    opened.close()


def test_ingest_runs_on_one_thread_and_an_idle_writer_gives_the_threads_back(store: DuckDBStore) -> None:
    writer = Writer(store, max_rows=10_000, commit_timeout_s=30)
    writer.start()
    try:
        def seen(target: Store, parts: list[Any]) -> list[int]:
            return [threads(target) for _ in parts]

        assert writer.call_merged("a write", seen) == 1
        assert writer.call(threads) == 3  # a call alone: upkeep keeps every thread
        assert writer.call_merged("another", seen) == 1
        settle(store)
        assert threads(store) == 3  # idle again
        # A write queued while another request is being prepared: the writer stays busy for it,
        # and gives the threads back once that request ends without a write (refused, say).
        with writer.preparing():
            with ThreadPoolExecutor(1) as pool:
                assert pool.submit(writer.call_merged, "queued", seen).result() == 1
            assert threads(store) == 1
        settle(store)
        assert threads(store) == 3
    finally:
        writer.stop()


def settle(store: Store) -> None:
    """Waits until the writer has given the threads back, or 30 s have passed."""
    deadline = time.monotonic() + 30
    while threads(store) == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
