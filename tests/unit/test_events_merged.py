"""Vision Events requests written together (`Writer.call_merged`, `vision_events.write_merged`) on
a real DuckDB store: requests queued behind one another share one write and each gets its own
answer; requests naming the same event id are written one after the other, so the last version
wins as it would alone; a part that fails fails alone; a queued write waits for one still being
prepared, so requests arriving together share a commit; the store writes them with short waits
for the interpreter lock."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.ingest.vision_events import Size, Write, decode_one, to_rows, write_merged
from inferwatch.ingest.writer import Writer
from inferwatch.query.filters import Filters
from inferwatch.store.base import Store
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.duckdb.gil import WRITE_SWITCH_INTERVAL_S, short_gil_waits
from inferwatch.store.events import ACTIVE, EventQuery, EventTables, UseCaseRecord

NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(str(tmp_path / "events.duckdb"))
    opened.migrate()
    created = NOW.replace(tzinfo=None)
    opened.put_use_case(UseCaseRecord(1, "uc", "line", ACTIVE, created, created))
    yield opened
    opened.close()


def part(*events: tuple[str, float]) -> Write:
    """A request's events: (event id, temperature) each, with one detection on one image."""
    prepared = []
    for event_id, temperature in events:
        body = {"eventId": event_id, "eventType": "quality_check", "useCaseId": "uc",
                "timestamp": (NOW - timedelta(minutes=1)).isoformat(), "customMetadata": {"temperature": temperature},
                "images": [{"objectDetections": [{"class": "dent", "x": 1, "y": 1, "width": 2, "height": 2,
                                                  "confidence": 0.5}]}]}
        prepared.append((decode_one(msgspec.json.encode(body), NOW), "uc"))
    rows, meta, event_rows = to_rows(prepared, 1, {"": Size(None, None)}, int(NOW.timestamp()) * 1_000_000)
    return Write(1, rows, meta, event_rows, {p.event.eventId: p.body for p, _ in prepared}, [],
                 EventTables.of(rows, meta, event_rows))


def review(event_id: str, related: str, verdict: str) -> Write:
    """A request of one operator_feedback event reviewing `related`."""
    body = {"eventId": event_id, "eventType": "operator_feedback", "useCaseId": "uc",
            "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
            "eventData": {"relatedEventId": related, "feedback": verdict}}
    prepared = [(decode_one(msgspec.json.encode(body), NOW), "uc")]
    rows, meta, event_rows = to_rows(prepared, 1, {}, int(NOW.timestamp()) * 1_000_000)
    return Write(1, rows, meta, event_rows, {event_id: prepared[0][0].body}, [], EventTables.of(rows, meta, event_rows))


def temperatures(store: Store) -> dict[str, Any]:
    found = store.query_events(1, EventQuery("uc", 100))
    return {e.event_id: msgspec.json.decode(e.body)["customMetadata"]["temperature"] for e in found}


def test_disjoint_requests_share_a_write_and_each_is_answered(store: DuckDBStore) -> None:
    answers = write_merged(store, [part(("a", 1), ("b", 2)), part(("c", 3))])
    assert answers == [2, 1]
    assert temperatures(store) == {"a": 1, "b": 2, "c": 3}
    assert store.totals(1, Filters()).inferences == 3


def test_requests_naming_one_id_are_written_in_turn_and_the_last_wins(store: DuckDBStore) -> None:
    answers = write_merged(store, [part(("a", 1)), part(("a", 5), ("b", 2)), part(("c", 3))])
    assert answers[0] == 1
    assert temperatures(store) == {"a": 5, "b": 2, "c": 3}
    # The replaced version's inference went first: one inference per event id.
    assert store.totals(1, Filters()).inferences == 3


def test_the_writer_merges_queued_calls_and_a_failing_part_fails_alone(store: DuckDBStore) -> None:
    writer = Writer(store, max_rows=100_000, commit_timeout_s=60)
    writer.start()
    runs: list[int] = []

    def run(target: Store, parts: list[Write | None]) -> list[int]:
        runs.append(len(parts))
        if any(p is None for p in parts):
            raise ValueError("a bad part")
        return write_merged(target, [p for p in parts if p is not None])

    entered, release = threading.Event(), threading.Event()

    def hold(_: Store) -> None:  # keeps the writer busy while the three are queued
        entered.set()
        release.wait()

    blocked = threading.Thread(target=writer.call, args=(hold,))
    blocked.start()
    entered.wait()
    outcomes: dict[str, Any] = {}

    def send(name: str, payload: Write | None) -> None:
        try:
            outcomes[name] = writer.call_merged(payload, run)
        except ValueError as exc:
            outcomes[name] = exc

    senders = [threading.Thread(target=send, args=("first", part(("a", 1)))),
               threading.Thread(target=send, args=("bad", None)),
               threading.Thread(target=send, args=("last", part(("b", 2))))]
    try:
        for sender in senders:  # in this order behind the blocked call
            sender.start()
            while len(writer._queue) < senders.index(sender) + 1:
                threading.Event().wait(0.01)
        release.set()
        for sender in senders:
            sender.join()
    finally:
        release.set()
        blocked.join()
        writer.stop()
    assert runs[0] == 3  # one run for the three, then each alone
    assert outcomes["first"] == 1 and outcomes["last"] == 1
    assert isinstance(outcomes["bad"], ValueError)
    assert temperatures(store) == {"a": 1, "b": 2}


def test_a_queued_write_waits_for_one_being_prepared_and_both_share_one_write(store: DuckDBStore) -> None:
    # A wait far longer than the test: the second write, not the time, ends it.
    writer = Writer(store, max_rows=100_000, commit_timeout_s=60, linger_s=600)
    writer.start()
    runs: list[int] = []

    def run(target: Store, parts: list[Write]) -> list[int]:
        runs.append(len(parts))
        return write_merged(target, parts)

    async def both() -> tuple[int, int]:
        with writer.preparing() as ticket:  # the second request, still being decoded
            first = asyncio.ensure_future(writer.merged(part(("a", 1)), run, 1))
            while not writer._queue:  # the first is queued; the writer waits for the second
                await asyncio.sleep(0.01)
            second = await writer.merged(part(("b", 2)), run, 1, ticket)
        return await first, second

    try:
        # In a thread of its own: a session's Playwright (the browser tests, on the same worker)
        # keeps an event loop running in the main thread, where asyncio.run refuses to start one.
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(asyncio.run, both()).result()
    finally:
        writer.stop()
    assert runs == [2]
    assert answers == (1, 1)
    assert temperatures(store) == {"a": 1, "b": 2}


def test_new_events_meeting_stored_rows_fall_back_whole_to_the_replacing_write(store: DuckDBStore) -> None:
    """All-new events are written by plain inserts in one commit (`add_new_events`); one key
    already stored (here metadata written for the id before its event came) rolls that attempt
    back whole, and the replacing write stores the events as sent."""
    early = MetadataRows()
    early.add(1, "a", "temperature", 9, int(NOW.timestamp()) * 1_000_000)
    early.add(1, "a", "shift", "night", int(NOW.timestamp()) * 1_000_000)
    store.append(InferenceRows(), early)
    sent = part(("b", 2), ("a", 1))
    assert store.add_new_events(sent.tables) is None
    assert temperatures(store) == {}
    assert store.totals(1, Filters()).inferences == 0
    assert write_merged(store, [sent]) == [2]
    assert temperatures(store) == {"a": 1, "b": 2}
    assert store.totals(1, Filters()).inferences == 2
    found = store.metadata_of(1, ["a", "b"])
    assert found["a"]["temperature"] == 1 and found["a"]["shift"] == "night"
    assert found["b"]["temperature"] == 2


def test_all_new_events_are_written_in_one_commit_and_a_retry_rewrites_nothing(store: DuckDBStore) -> None:
    sent = part(("a", 1), ("b", 2))
    assert store.add_new_events(sent.tables) == 2
    assert temperatures(store) == {"a": 1, "b": 2}
    assert store.add_new_events(sent.tables) is None  # stored: the caller replaces
    assert write_merged(store, [part(("a", 1), ("b", 2))]) == [0]
    assert temperatures(store) == {"a": 1, "b": 2}
    assert store.totals(1, Filters()).inferences == 2


def test_requests_reviewing_one_event_share_a_write_and_the_last_verdict_wins(store: DuckDBStore) -> None:
    """Each request's tables are made apart (`EventTables.of`), so two joined requests can both
    write the reviewed event's verdict: the joined plain INSERT fails on that key, and the
    general path stores both reviews, the later request's verdict on the reviewed event."""
    write_merged(store, [part(("a", 1))])
    first, second = review("r1", "a", "correct"), review("r2", "a", "incorrect")
    assert store.add_new_events(EventTables.joined([first.tables, second.tables])) is None
    assert write_merged(store, [first, second]) == [0, 0]
    assert {e.event_id for e in store.find_events(1, ["r1", "r2"])} == {"r1", "r2"}
    assert store.metadata_of(1, ["a"])["a"]["ve.feedback"] == "incorrect"


class _Seeing:
    """A cursor that notes the switch interval each statement starts under."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seen: list[float]) -> None:
        self._con, self._seen = con, seen

    def execute(self, *args: Any) -> duckdb.DuckDBPyConnection:
        self._seen.append(sys.getswitchinterval())
        return self._con.execute(*args)


def test_new_events_are_written_with_short_gil_waits_and_the_interval_comes_back(
        store: DuckDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's DuckDB script runs at the short switch interval (`store/duckdb/gil.py`), and
    the process's own interval is back afterwards, whether the write went through or was refused
    for a key already stored."""
    own = sys.getswitchinterval()
    short = pytest.approx(WRITE_SWITCH_INTERVAL_S)  # the interpreter keeps whole microseconds
    assert own != short
    seen: list[float] = []
    cursor = store._cursor
    store._cursor().execute("SET GLOBAL python_scan_all_frames = true")  # the tables are named a frame up
    monkeypatch.setattr(store, "_cursor", lambda: _Seeing(cursor(), seen))
    sent = part(("a", 1))
    assert store.add_new_events(sent.tables) == 1
    assert seen == [short] and sys.getswitchinterval() == own
    assert store.add_new_events(sent.tables) is None  # stored already: rolled back
    assert seen[1] == short and sys.getswitchinterval() == own
    assert temperatures(store) == {"a": 1}


def test_short_gil_waits_give_the_interval_back_when_the_block_fails() -> None:
    own = sys.getswitchinterval()
    with pytest.raises(RuntimeError), short_gil_waits():
        assert sys.getswitchinterval() == pytest.approx(WRITE_SWITCH_INTERVAL_S)
        raise RuntimeError("a failed write")
    assert sys.getswitchinterval() == own
