"""The DuckDB store keeps each workspace's use cases as last read (`UseCaseCache`): a write is
seen by the next read, and a read that raced a write keeps nothing stale."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.events import ACTIVE, UseCaseRecord

NOW = datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(str(tmp_path / "cases.duckdb"))
    opened.migrate()
    yield opened
    opened.close()


def test_a_write_is_read_at_once_and_after_reopening(store: DuckDBStore, tmp_path: Path) -> None:
    line = UseCaseRecord(1, "uc1", "line", ACTIVE, NOW, NOW)
    assert store.use_cases(1) == []
    store.put_use_case(line)
    assert store.use_cases(1) == [line]
    archived = replace(line, status="inactive")
    store.put_use_case(archived)
    assert store.use_cases(1) == [archived]
    store.put_use_case(UseCaseRecord(2, "uc2", "other", ACTIVE, NOW, NOW))
    assert store.use_cases(1) == [archived]  # another workspace's write leaves this one's as it was
    store.use_cases(1).clear()  # a caller's list is its own
    assert store.use_cases(1) == [archived]
    store.close()
    again = DuckDBStore(str(tmp_path / "cases.duckdb"))
    try:
        assert again.use_cases(1) == [archived]
    finally:
        again.close()


def test_a_read_begun_before_a_write_keeps_nothing(store: DuckDBStore) -> None:
    line = UseCaseRecord(1, "uc1", "line", ACTIVE, NOW, NOW)
    seen = store._use_cases.generation  # a read begins, and reads the table before the write
    store.put_use_case(line)
    store._use_cases.keep(1, seen, [])  # it ends after the write: what it read is not kept
    assert store.use_cases(1) == [line]
