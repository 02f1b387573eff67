"""The list of metadata fields read from the counts kept of older rows plus the rows written
since (`store/duckdb/cache/meta_counts.py`) answers as counting every row does, through new
rows, a value replaced, rows deleted, a second workspace and a restart; and a call after only
new rows reads the counts rather than making them again."""

from __future__ import annotations

import time
from pathlib import Path

from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.store.base import MetadataField
from inferwatch.store.duckdb import DuckDBStore

HOUR_US = 3600 * 10**6


def written(ws: int, ago_us: int, *triples: tuple[str, str, MetaScalar]) -> MetadataRows:
    """Metadata stamped as written `ago_us` before now (every write path stamps its own time)."""
    out = MetadataRows()
    for inference_id, name, value in triples:
        out.add(ws, inference_id, name, value, time.time_ns() // 1000 - ago_us)
    return out


def fields(store: DuckDBStore, ws: int) -> list[list[MetadataField]]:
    return [store.metadata_fields(ws, top) for top in (1, 3)]


def counted(path: Path, ws: int) -> list[list[MetadataField]]:
    """The same from every row: the store without its caches, on the same file."""
    plain = DuckDBStore(str(path), caches=False)
    try:
        return fields(plain, ws)
    finally:
        plain.close()


def made(store: DuckDBStore) -> int:
    """A fingerprint of the stored counts' rows (their row ids): another once they are made again."""
    found = store._cursor().execute("SELECT count(*), sum(hash(rowid)) FROM metadata_value_counts").fetchone()
    assert found is not None
    return hash(found)


def test_the_counts_answer_as_every_row(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(str(path))
    store.migrate()
    for slug in ("a", "b"):
        store.create_workspace(slug, slug)
    old = [(f"i-{n}", "line", f"l{n % 4}") for n in range(300)] + [(f"i-{n}", "temp", n % 7 * 1.5) for n in range(200)]
    store.append(InferenceRows(), written(1, 3 * HOUR_US, *old))
    store.append(InferenceRows(), written(2, 3 * HOUR_US, ("j-1", "line", "l9"), ("j-2", "shift", True)))
    first = fields(store, 1)
    assert first == counted(path, 1)
    assert [f.name for f in first[0]] == ["line", "temp"]
    kept = made(store)

    # New rows: counted at the call, the counts kept.
    store.append(InferenceRows(), written(1, 0, *((f"k-{n}", "line", "l1") for n in range(40)),
                                          ("k-1", "temp", "warm")))
    now = fields(store, 1)
    assert now == counted(path, 1) and now != first
    assert made(store) == kept
    assert fields(store, 2) == counted(path, 2)

    # An older row's value replaced by a new write: its old value no longer counts.
    store.append(InferenceRows(), written(1, 0, ("i-0", "line", "l3"), ("i-1", "temp", "cold")))
    replaced = fields(store, 1)
    assert replaced == counted(path, 1) and replaced != now

    # Rows deleted (a re-sent event's fields go before its new version is written).
    store.forget_event_rows(1, ["i-2", "i-3", "k-1"], [("i-2", "line"), ("i-3", "line"), ("k-1", "temp")])
    deleted = fields(store, 1)
    assert deleted == counted(path, 1) and deleted != replaced

    # A restart: the counts are made again, as they were.
    store.close()
    store = DuckDBStore(str(path))
    store.migrate()
    assert fields(store, 1) == deleted
    assert fields(store, 2) == counted(path, 2)
    store.close()
