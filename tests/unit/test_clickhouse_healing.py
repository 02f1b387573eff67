"""A chdb store heals, without a restart, a table whose merged part a full disk left empty.

ClickHouse's engine (chdb) can commit a merged part none of whose files could be written when the
disk fills during the merge's last step (`store/clickhouse/healing.py`); `test_disk.py` meets that
now and then under load. Here the part is made deterministically: three appends, merged into one
part by OPTIMIZE, whose files are then emptied, as the engine leaves them. The parts it merged are
still on disk, as they are after such a merge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inferwatch.ingest.rows import MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.store import open_store
from inferwatch.store.clickhouse import ClickHouseStore
from tests.unit.test_rollup import rows

BATCHES = 3
PER_BATCH = 50


@pytest.fixture
def store(chdb_url: Callable[[str], str]) -> Iterator[ClickHouseStore]:
    opened = open_store(chdb_url("healing"))
    assert isinstance(opened, ClickHouseStore)
    opened.migrate()
    for batch in range(BATCHES):
        opened.append(rows(batch, PER_BATCH, 9, f"b{batch}"), MetadataRows())
    yield opened
    opened.close()


def _break_the_merged_part(store: ClickHouseStore) -> str:
    """Merges the inferences into one part and empties its files; returns the part's name."""
    store._command("OPTIMIZE TABLE inferences FINAL", {})
    ((name, path),) = store._rows("SELECT name, path FROM system.parts WHERE database = currentDatabase()"
                                  " AND table = 'inferences' AND active", {})
    low, high = name.split("_")[1:3]
    assert int(high) - int(low) == BATCHES - 1, name  # one part made of the three
    for file in Path(path).rglob("*"):  # its projection's files too
        if file.is_file():
            file.write_bytes(b"")
    return str(name)


def _broken_parts(store: ClickHouseStore) -> list[str]:
    return [name for (name,) in store._rows(
        "SELECT name FROM system.detached_parts WHERE database = currentDatabase() AND table = 'inferences'", {})]


def test_a_read_that_meets_the_broken_part_has_the_table_reloaded_and_answers(store: ClickHouseStore) -> None:
    part = _break_the_merged_part(store)
    assert store.totals(1, Filters()).inferences == BATCHES * PER_BATCH
    assert _broken_parts(store) == [f"broken-on-start_{part}"]
    # The identities are whole: a batch sent again adds nothing, a new one all its rows.
    assert store.append(rows(0, PER_BATCH, 9, "b0"), MetadataRows()) == 0
    assert store.append(rows(9, PER_BATCH, 9, "new"), MetadataRows()) == PER_BATCH
    assert store.totals(1, Filters()).inferences == (BATCHES + 1) * PER_BATCH


def test_reopening_reloads_every_table_while_reads_go_on(store: ClickHouseStore) -> None:
    """The writer reopens the store after a storage failure: a broken part nobody read yet is dealt
    with then. Reads running meanwhile wait for the reload rather than meet a detached table."""
    part = _break_the_merged_part(store)
    answers: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                answers.append(store.totals(1, Filters()).inferences)
            except BaseException as exc:  # every failure is the finding
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(3):
            store.reopen()
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert answers and set(answers) == {BATCHES * PER_BATCH}
    assert _broken_parts(store) == [f"broken-on-start_{part}"]
