"""The DuckDB store reads a page's metadata through the index on `id_key`, not by reading every
metadata row: a cost that follows the page, not the store. Asserted on the plan DuckDB ran, so
no timing is involved."""

from __future__ import annotations

import random
from pathlib import Path

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.store.duckdb import DuckDBStore, schema
from tests.unit.test_store_parity import BASE_US, _add


def test_a_page_of_metadata_is_read_through_the_index(tmp_path: Path) -> None:
    store = DuckDBStore(str(tmp_path / "store.duckdb"))
    store.migrate()
    rng = random.Random(13)
    rows, meta = InferenceRows(), MetadataRows()
    for i in range(5000):
        _add(rows, rng, 1, f"id-{i}", 0, BASE_US + i * 1_000_000)
        meta.add(1, f"id-{i}", "line", f"l{i % 7}", BASE_US)
        meta.add(1, f"id-{i}", "temperature", i / 10, BASE_US)
    store.append(rows, meta)
    page = [f"id-{i}" for i in range(4950, 5000)]
    plan = store._cursor().execute("EXPLAIN ANALYZE " + schema.METADATA_OF, [1, page]).fetchall()[0][1]
    assert "Index Scan" in plan
    found = store.metadata_of(1, page)
    assert found["id-4999"] == {"line": "l1", "temperature": 499.9} and len(found) == 50
    store.close()
