"""The inference list with metadata terms on DuckDB (`store/duckdb/meta_page.py`): the newest
candidates checked through the metadata's index give exactly the plain statement's pages, first
pages and every page after a cursor, whichever way the batches end (the page filled, the store
exhausted, or the budget spent and the plain statement going on from there)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.base import Cursor
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.duckdb.meta_page import id_key, metadata_rows, newest_checked
from inferwatch.store.paging import cut, top_of
from inferwatch.store.rows import LIST_COLUMNS, to_us
from tests.unit.test_store_parity import BASE_US, _add

HOUR_US = 3600 * 10**6
TEMPS: tuple[str | int | float, ...] = (1, 5, 150, "hot", 151.5)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """Inferences over 20 days, densest in the last hours (so the windows widen from an hour to
    days), some of several images; metadata common (`line`), rare (`lot=x`, about one in forty),
    numeric (`temp`), late (written batches after its inference), on ids of the other workspace,
    and some inferences without any."""
    s = DuckDBStore(str(tmp_path_factory.mktemp("meta_page") / "store.duckdb"), lookup_from=0)
    s.migrate()
    s.create_workspace("alpha", "a")
    s.create_workspace("beta", "b")
    rng = random.Random(18)
    ids: list[tuple[int, str]] = []
    for b in range(6):
        rows, meta = InferenceRows(), MetadataRows()
        for n in range(400):
            ws = 1 if rng.random() < 0.85 else 2
            inference_id = f"i{b}-{n:04d}" if rng.random() < 0.95 else f"i{b}-{n - 1:04d}"  # some re-sent
            back = rng.expovariate(1 / (6 * HOUR_US)) if rng.random() < 0.7 else rng.uniform(0, 20 * 24 * HOUR_US)
            ts = BASE_US + 20 * 24 * HOUR_US - int(back)
            for image in range(rng.choice([1, 1, 1, 2])):
                _add(rows, rng, ws, inference_id, image, ts)
            ids.append((ws, inference_id))
            now = BASE_US + b
            if rng.random() < 0.9:
                meta.add(ws, inference_id, "line", rng.choice(["a", "b"]), now)
            if rng.random() < 0.025:
                meta.add(ws, inference_id, "lot", "x", now)
            if rng.random() < 0.5:
                meta.add(ws, inference_id, "temp", rng.choice(TEMPS), now)
        for _ in range(30):  # late metadata, and metadata of the same id in the other workspace
            ws, inference_id = rng.choice(ids)
            meta.add(ws, inference_id, "line", "late", BASE_US + 10 + b)
            meta.add(3 - ws, inference_id, "lot", "x", BASE_US + 10 + b)
        s.append(rows, meta)
    yield s
    s.close()


FILTERS = [
    Filters(meta=(MetaTerm.equal("line", "a"),)),
    Filters(meta=(MetaTerm.equal("line", "late"),)),
    Filters(meta=(MetaTerm.equal("lot", "x"),)),
    Filters(meta=(MetaTerm.equal("line", "b"), MetaTerm("temp", bounds=((">", 3.0),)))),
    Filters(meta=(MetaTerm("temp", not_texts=("hot",), not_numbers=(150.0,)),)),
    Filters(meta=(MetaTerm.equal("line", "nothing"),)),
    Filters(model_ids=("cars/1",), tags=("night",), meta=(MetaTerm.equal("line", "a", "b"),)),
    Filters(classes=("car",), min_confidence=0.3, meta=(MetaTerm.equal("line", "b"),)),
    Filters(start=None, end=None, device_ids=("cam-a", "cam-c"), meta=(MetaTerm.equal("lot", "x"),)),
]
IDS = [f"f{i}" for i in range(len(FILTERS))]


def _newest(store: DuckDBStore, ws: int) -> Any:
    found = store._cursor().execute("SELECT max(ts) FROM inferences WHERE ws = ?", [ws]).fetchone()
    return found[0] if found else None


def _plain(store: DuckDBStore, ws: int, filters: Filters, after: Cursor | None, want: int) -> list[tuple[Any, ...]]:
    """The plain statement's rows: every term, the metadata ones a semi-join."""
    top = top_of(filters, after, lambda: _newest(store, ws))
    return store._plain_rows(store._cursor(), ws, filters, after, want, top)


def _cursors(store: DuckDBStore, ws: int, filters: Filters) -> list[Cursor | None]:
    """The first page's (None) and eight cursors spread over the rows the filters select."""
    rows = _plain(store, ws, filters, None, 10**6)
    return [None, *(Cursor(to_us(r[2]), r[0], r[1]) for r in rows[::max(1, len(rows) // 8)])]


def test_lookups_from_a_size(store: DuckDBStore) -> None:
    """DuckDB's count also holds the rows an upsert replaced, so it is at least the rows there are."""
    counted = store._cursor().execute("SELECT count(*) FROM metadata").fetchone()
    assert counted is not None and metadata_rows(store._cursor()) >= counted[0] > 0


def test_ids_key_as_duckdb_does(store: DuckDBStore) -> None:
    con = store._cursor()
    ids = ["i0-0001", "named", "ünïcode-✓", ""]
    keys = con.execute("SELECT list(md5_number(i)::VARCHAR ORDER BY n) FROM"
                       " (SELECT unnest(?::VARCHAR[]) AS i, generate_subscripts(?::VARCHAR[], 1) AS n)",
                       [ids, ids]).fetchone()
    assert keys is not None and keys[0] == [str(id_key(i)) for i in ids]


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_pages_are_the_plain_statements(store: DuckDBStore, filters: Filters) -> None:
    for ws in (1, 2):
        assert _plain(store, ws, filters, None, 10**6) or filters.meta[0].texts == ("nothing",)
        for limit in (7, 50):
            after: Cursor | None = None
            for _ in range(12):  # the first twelve pages, each from the cursor the one before gave
                page, following = store.list_inferences(ws, filters, after, limit)
                plain, plain_following = cut(_plain(store, ws, filters, after, limit + 1), limit)
                assert [(r.inference_id, r.image_index) for r in page] == [(r[0], r[1]) for r in plain]
                assert following == plain_following
                if following is None:
                    break
                after = following


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
@pytest.mark.parametrize(("first", "budget", "lookup"), [(2, 10**6, 1), (4, 40, 3), (256, 4096, 256)])
def test_every_end_of_the_batches(store: DuckDBStore, filters: Filters, first: int, budget: int,
                                  lookup: int) -> None:
    """Small batches, lookups and budgets: the rows found, and the plain statement's from where
    the batches stopped, are the plain statement's rows from every cursor."""
    con = store._cursor()
    for after in _cursors(store, 1, filters):
        for want in (1, 8, 51):
            top = top_of(filters, after, lambda: _newest(store, 1))
            checked = newest_checked(con, 1, filters, after, want, top, first, budget, lookup)
            rows = checked.rows
            assert len(rows) <= want
            if not checked.complete:
                assert checked.position is not None or after is None
                rows += _plain(store, 1, filters, checked.position, want - len(rows))
            assert rows == _plain(store, 1, filters, after, want), (after, want)
            assert len(rows[0]) == len(LIST_COLUMNS.split(",")) if rows else True
