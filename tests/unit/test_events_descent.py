"""The Vision Events query on DuckDB reads the newest events first, a window of time at a time,
widening while its page is not full (`store/duckdb/events.py`). Whatever the windows, the pages
must be exactly those of one plain statement over every event, and ClickHouse's (which reads
the metadata rows): for filters that match often and rarely, with time bounds and cursors, on
events spread from months ago to tomorrow, several sharing a time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.query.filters import Filters, MetaTerm, typed_term
from inferwatch.store import open_store
from inferwatch.store.base import Store
from inferwatch.store.clickhouse import ClickHouseStore
from inferwatch.store.clickhouse import schema as ch_schema
from inferwatch.store.clickhouse.importer import copy_store, open_source
from inferwatch.store.duckdb import DuckDBStore, schema
from inferwatch.store.events import ACTIVE, EventQuery, UseCaseRecord
from tests.unit.test_events_parity import send

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TYPES = ("quality_check", "inventory_count", "custom")


def _when(rng: random.Random) -> datetime:
    """Most events in the last hours, fewer days and months back, a few ahead (up to tomorrow);
    on whole minutes, so several share a time."""
    spread = rng.choice([timedelta(hours=3)] * 6 + [timedelta(days=4)] * 3 + [timedelta(days=200)])
    at = NOW - spread * rng.random() + (timedelta(hours=20) if rng.random() < 0.05 else timedelta())
    return at.replace(second=0, microsecond=0)


def _event(rng: random.Random, i: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": f"e{i:04d}", "eventType": rng.choice(TYPES), "useCaseId": rng.choice(["uc1", "uc1", "uc2"]),
        "timestamp": _when(rng).isoformat(), "eventData": {"result": rng.choice(["pass", "fail"])},
        "customMetadata": {"temperature": rng.randrange(0, 1000) / 10, "line": rng.choice(["a", "b", ""]),
                           "ok": rng.random() < 0.5},
        "images": [{"sourceId": "s1", "objectDetections": [
            {"class": rng.choice(["scratch", "dent"]), "x": 10, "y": 10, "width": 5, "height": 5,
             "confidence": round(rng.random(), 3)}]}] if rng.random() < 0.8 else [],
    }
    if rng.random() < 0.1:
        del event["customMetadata"]
    return event


def _seed(store: Store) -> None:
    rng = random.Random(20261203)
    bodies = [_event(rng, i) for i in range(600)]
    # Re-sent, changed (new time, new fields): the row the descent reads is the new one.
    bodies += [{**b, "timestamp": _when(rng).isoformat(), "customMetadata": {"temperature": 99.95}}
               for b in bodies[:30]]
    store.migrate()
    for uc in ("uc1", "uc2"):
        store.put_use_case(UseCaseRecord(1, uc, uc, ACTIVE, datetime(2026, 1, 1), datetime(2026, 1, 1)))
    for start in range(0, len(bodies), 100):
        send(store, bodies[start:start + 100])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, chdb_url: Any) -> Iterator[tuple[DuckDBStore, Store]]:
    duck = DuckDBStore(str(tmp_path_factory.mktemp("descent") / "events.duckdb"))
    chdb = open_store(chdb_url("descent"))
    for store in (duck, chdb):
        _seed(store)
    yield duck, chdb
    duck.close()
    chdb.close()


def _pages(store: Store, query: EventQuery) -> list[list[tuple[str, datetime]]]:
    pages: list[list[tuple[str, datetime]]] = []
    after = None
    while True:
        fields = {name: getattr(query, name) for name in query.__dataclass_fields__}
        page = store.query_events(1, EventQuery(**{**fields, "after": after}))
        if not page:
            return pages
        pages.append([(e.event_id, e.ts) for e in page])
        last = page[-1]
        after = ((last.ts - datetime(1970, 1, 1)) // timedelta(microseconds=1), last.event_id)


def _naive(at: datetime) -> datetime:
    return at.replace(tzinfo=None)


QUERIES = [
    EventQuery("uc1", 7),  # every event
    EventQuery("uc1", 7, meta=(typed_term("temperature", "gt", 10),)),  # often
    EventQuery("uc1", 5, meta=(typed_term("temperature", "gte", 99),)),  # rarely (and the re-sent ones)
    EventQuery("uc1", 3, meta=(typed_term("temperature", "gt", 99.99),)),  # never
    EventQuery("uc1", 6, event_types=("quality_check",), meta=(typed_term("temperature", "gt", 50),
                                                               typed_term("temperature", "lte", 56))),
    EventQuery("uc2", 4, meta=(typed_term("line", "neq", "a"), typed_term("ok", "eq", True))),
    EventQuery("uc1", 4, meta=(typed_term("line", "eq", ""),)),  # an empty value is never stored
    EventQuery("uc1", 8, meta=(MetaTerm("temperature"), MetaTerm.equal("ve.data.result", "fail"))),
    EventQuery("uc1", 8, meta=(typed_term("temperature", "neq", 99.95),)),
    EventQuery("uc1", 5, detection=Filters(classes=("dent",), min_confidence=0.9)),
    EventQuery("uc1", 5, start=_naive(NOW - timedelta(days=3)), end=_naive(NOW - timedelta(hours=2))),
    EventQuery("uc1", 5, start=_naive(NOW - timedelta(minutes=30)), meta=(typed_term("temperature", "lt", 30),)),
    EventQuery("uc1", 5, end=_naive(NOW - timedelta(days=10)), meta=(typed_term("temperature", "lt", 50),)),
    EventQuery("uc2", 9, meta=(MetaTerm.equal("ve.event_type", "custom"),)),  # a semi-join: one statement
    EventQuery("uc1", 6, feedback=("none",), meta=(typed_term("temperature", "gt", 50),)),  # one in each window
]


NONE = ((typed_term("temperature", "gt", 99.99),), (typed_term("line", "eq", ""),))


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_the_descent_answers_as_one_statement(stores: tuple[DuckDBStore, Store], query: EventQuery) -> None:
    duck, chdb = stores
    plain = _pages(chdb, query)
    assert plain or query.meta in NONE  # only these find nothing
    for descent in ((), (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=2), timedelta(days=5)),
                    DuckDBStore.descent):
        duck.descent = descent
        try:
            assert _pages(duck, query) == plain, descent
        finally:
            del duck.descent


def test_the_windows_are_read_in_one_snapshot(stores: tuple[DuckDBStore, Store]) -> None:
    """A page is as long as asked while events remain, whichever window its events came from."""
    duck, _ = stores
    duck.descent = (timedelta(minutes=1), timedelta(minutes=2))
    try:
        pages = _pages(duck, EventQuery("uc1", 50))
    finally:
        del duck.descent
    assert all(len(page) == 50 for page in pages[:-1])
    times = [at for page in pages for _, at in page]
    assert times == sorted(times, reverse=True) and times[0] > _naive(NOW) > times[-1] + timedelta(days=30)


def test_the_migration_fills_the_fields_of_stored_events_as_a_write_does(tmp_path: Path,
                                                                        stores: tuple[DuckDBStore, Store]) -> None:
    """A store whose events were written before the fields were on their rows: the migration
    reads them from the metadata rows those events wrote, and the query then answers as before."""
    path = tmp_path / "old.duckdb"
    store = DuckDBStore(str(path))
    _seed(store)
    read = "SELECT event_id, field_values, field_numbers FROM events ORDER BY event_id"
    written = store._cursor().execute(read).fetchall()
    con = store._cursor()
    con.execute("ALTER TABLE events DROP COLUMN field_values")
    con.execute("ALTER TABLE events DROP COLUMN field_numbers")
    con.execute(next(ddl for ddl in schema.MIGRATIONS if "ADD COLUMN field_values" in ddl))
    store.close()
    store = DuckDBStore(str(path))
    try:
        migrated = store._cursor().execute(read).fetchall()
        # An event without such fields has an empty map when written, none when migrated.
        assert [(i, v or {}, n or {}) for i, v, n in migrated] == written
        assert any(v for _, v, _ in written) and any(not n for _, _, n in written)
        for query in QUERIES:
            assert _pages(store, query) == _pages(stores[0], query)
    finally:
        store.close()


@pytest.mark.parametrize("before_fields", [False, True], ids=["current", "before-fields"])
def test_a_copy_into_clickhouse_answers_as_the_source(tmp_path: Path, chdb_url: Any, stores: tuple[DuckDBStore, Store],
                                                      before_fields: bool) -> None:
    """`inferwatch migrate` copies the events' fields; from a source older than them (read-only,
    so not migrated first) it makes them from the metadata rows, as the migration does."""
    path = tmp_path / "source.duckdb"
    duck = DuckDBStore(str(path))
    _seed(duck)
    if before_fields:
        duck._cursor().execute("ALTER TABLE events DROP COLUMN field_values")
        duck._cursor().execute("ALTER TABLE events DROP COLUMN field_numbers")
    duck.close()
    target = open_store(chdb_url(f"copied_{int(before_fields)}"))
    assert isinstance(target, ClickHouseStore)
    source = open_source(str(path))
    try:
        assert copy_store(source, str(path), target).vision_events == 2 + 600
        for query in QUERIES:
            assert _pages(target, query) == _pages(stores[0], query)
    finally:
        source.close()
        target.close()


def test_the_clickhouse_migration_fills_the_fields_of_stored_events(chdb_url: Any,
                                                                    stores: tuple[DuckDBStore, Store]) -> None:
    store = open_store(chdb_url("before_fields"))
    assert isinstance(store, ClickHouseStore)
    try:
        _seed(store)
        client = store._client()
        for column in ("field_values", "field_numbers"):
            client.command(f"ALTER TABLE events DROP COLUMN {column}")
        for statement in next(m for m in ch_schema.MIGRATIONS if "ADD COLUMN IF NOT EXISTS field_values" in m[0]):
            client.command(statement)
        for query in QUERIES:
            assert _pages(store, query) == _pages(stores[0], query)
    finally:
        store.close()
