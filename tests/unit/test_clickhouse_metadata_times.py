"""The ClickHouse store's metadata rows carry their inference's time (schema migration 13), so a
read of a window takes only that window's metadata, through the projection by field and time.
Those reads answer as a full scan does (the DuckDB store without its caches, given the same
writes) through each way a row's time can be unknown or change: metadata sent before its
inference, an inference stored at one time and then given an image at another, and later writes
of a value (a number, then a text with none), in windows that hold these inferences and windows
that do not, narrow ones (read through the projection) and wide ones (read with FINAL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.base import Store
from inferwatch.store.clickhouse import ClickHouseStore
from inferwatch.store.clickhouse.sql import Params, metadata_rows
from inferwatch.store.duckdb import DuckDBStore
from tests.unit.test_rollup import BASE, HOUR_US, rows
from tests.unit.test_store_parity import same

pytestmark = pytest.mark.slow

# The data lies in the last twelve hours, as a live store's does: windows of a day or less are
# read through the projection (an open end counting to now), wider ones with FINAL.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
SHIFT = NOW - timedelta(hours=12) - BASE
WINDOWS = (
    Filters(),
    Filters(start=NOW - timedelta(days=30)),
    Filters(start=NOW - timedelta(hours=12), end=NOW - timedelta(hours=2)),
    Filters(start=NOW - timedelta(hours=11, minutes=40), end=NOW - timedelta(hours=8, minutes=50)),
    Filters(start=NOW - timedelta(hours=6)),
)
TERMS = (
    (MetaTerm.equal("factory", "f1"),),
    (MetaTerm("temp", bounds=((">=", 40.0),)),),
    (MetaTerm("factory", not_texts=("f2",)), MetaTerm("temp", bounds=(("<", 70.0),))),
)
T0 = int((BASE + SHIFT).timestamp() * 10**6)


def recent(seed: int, n: int, hours: int, prefix: str) -> InferenceRows:
    """`test_rollup.rows`, moved to the last twelve hours."""
    batch = rows(seed, n, hours, prefix)
    by = SHIFT // timedelta(microseconds=1)
    batch.ts_us = [t + by for t in batch.ts_us]
    batch.received_us = [t + by for t in batch.received_us]
    return batch


def answers(store: Store) -> list[Any]:
    out: list[Any] = []
    for window in WINDOWS:
        out.append(store.group_table(1, window, "meta.factory"))
        out.append(store.numeric_figures(1, window, "temp", "meta.factory", None))
        out.append(store.series(1, window, timedelta(hours=1), "meta.factory"))
        for terms in TERMS:
            f = Filters(start=window.start, end=window.end, meta=terms)
            out += [store.totals(1, f), store.series(1, f, timedelta(hours=1), None),
                    store.list_inferences(1, f, None, 500)[0]]
    return out


def described(batch: InferenceRows, at_us: int) -> MetadataRows:
    """A factory and a temperature for each inference of the batch, as native ingest writes them."""
    meta = MetadataRows()
    for i, inference_id in enumerate(batch.inference_id):
        meta.add(1, inference_id, "factory", f"f{i % 3}", at_us)
        meta.add(1, inference_id, "temp", float(i % 100), at_us)
    return meta


def times(store: ClickHouseStore, prefix: str) -> set[int]:
    """The distinct times (epoch microseconds) the metadata of these inferences carries."""
    p = Params()
    return {t for (t,) in store._rows(
        "SELECT DISTINCT toUnixTimestamp64Micro(ts) FROM metadata FINAL"
        f" WHERE startsWith(inference_id, {p.add(prefix, 'String')})", p)}


def test_windowed_metadata_reads_answer_as_the_scan(tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    house = ClickHouseStore.from_url(chdb_url("metadata_times"))
    house.migrate()
    scan = DuckDBStore(str(tmp_path / "scan.duckdb"), caches=False)
    scan.migrate()
    both: list[Store] = [house, scan]
    for s in both:
        s.create_workspace("w", "h")

    def append(batch: InferenceRows, meta: MetadataRows) -> None:
        for s in both:
            s.append(batch, meta)

    # Inferences and their metadata in one batch: each row takes its inference's time.
    plain = recent(1, 600, 10, "plain")
    append(plain, described(plain, T0 + 11 * HOUR_US))
    assert times(house, "plain") == set(plain.ts_us)

    # Metadata sent before its inference: no time known, so every window takes it, until the
    # inference comes and gives it its time. Left at no time, as after a restart, it is read right.
    early = recent(2, 60, 10, "early")
    append(InferenceRows(), described(early, T0 + 11 * HOUR_US))
    assert times(house, "early") == {0}
    append(early, MetadataRows())
    assert times(house, "early") == set(early.ts_us)
    lost = recent(4, 50, 10, "lost")
    append(InferenceRows(), described(lost, T0 + 11 * HOUR_US))
    house._untimed.clear()
    append(lost, MetadataRows())
    assert times(house, "lost") == {0}

    # An inference stored at one time, then given a second image at another: its metadata, timed
    # when written, goes to no time.
    first = recent(3, 40, 3, "split")
    append(first, described(first, T0 + 11 * HOUR_US))
    assert times(house, "split") == set(first.ts_us)
    second = recent(3, 40, 3, "split")
    second.image_index = [1] * len(second)
    second.ts_us = [t + 6 * HOUR_US for t in second.ts_us]
    append(second, MetadataRows())
    assert times(house, "split") == {0}

    # Later writes: a number where a text was, then a text where that number was.
    later = MetadataRows()
    for inference_id in plain.inference_id[:80]:
        later.add(1, inference_id, "factory", 7, T0 + 12 * HOUR_US)
        later.add(1, inference_id, "temp", "hot", T0 + 12 * HOUR_US)
    append(InferenceRows(), later)

    found = answers(house)
    assert any(found) and found[0] and found[1]
    same(found, answers(scan))

    # Merged into one part, the older writes gone: the same answers.
    house._command("OPTIMIZE TABLE metadata FINAL", {})
    same(answers(house), found)

    # A window's metadata is read through the projection by field and time.
    p = Params()
    window = WINDOWS[3]
    plan = "\n".join(str(line) for (line,) in house._rows(
        f"EXPLAIN projections = 1 SELECT inference_id FROM {metadata_rows(1, window, p)}"
        f" WHERE field_name = {p.add('factory', 'String')}", p))
    assert "by_field" in plan
    house.close()
    scan.close()
