"""Vision Events on both stores (DuckDB, and ClickHouse on chdb): the same events, written through
the same rows, answer every query the same, page by page; a re-sent event id replaces the event
on both, a deleted one leaves both, and the use cases and schemas agree."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from inferwatch.ingest.vision_events import EVENT_TYPES, Size, Write, decode_one, to_rows
from inferwatch.ingest.vision_events import store as store_events
from inferwatch.query.filters import Filters, MetaTerm, typed_term
from inferwatch.query.performance import FEEDBACK_FIELD, VERDICTS
from inferwatch.store import open_store
from inferwatch.store.base import Store
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.events import ACTIVE, INACTIVE, ContextTerm, EventQuery, EventTables, UseCaseRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CREATED = datetime(2026, 11, 1)


def _event(rng: random.Random, i: int, use_case: str) -> dict[str, Any]:
    # Several events share a time, so the event id decides their order and the cursor must hold it.
    ts = NOW - timedelta(minutes=rng.randrange(0, 300) // 7 * 7)
    event: dict[str, Any] = {
        "eventId": f"evt-{i:04d}", "eventType": rng.choice(EVENT_TYPES), "useCaseId": use_case,
        "timestamp": ts.isoformat(), "eventData": {"result": rng.choice(["pass", "fail"]),
                                                   "externalId": f"x{i % 5}"},
        "customMetadata": {"temperature": rng.choice([140, 150, 150.5, 160, "150", "hot"]),
                           "line": rng.choice(["a", "b"]), "ok": rng.choice([True, False])},
        "images": [{"sourceId": "s1", "objectDetections": [
            {"class": rng.choice(["scratch", "dent"]), "x": 10, "y": 10, "width": 5, "height": 5,
             "confidence": round(rng.random(), 3)}], "metadata": {"exposure": rng.choice([1, "auto"])}}
                   for _ in range(rng.randrange(0, 3))],
    }
    if event["eventType"] == "operator_feedback":
        # A review of an earlier event (several reviews of one: its history, the last its verdict).
        event["eventData"] = {"relatedEventId": f"evt-{rng.randrange(0, max(i, 1)) // 4:04d}",
                              "feedback": rng.choice(VERDICTS)}
        event["comment"] = f"review {i}"
    if rng.random() < 0.7:
        event["deviceId"] = rng.choice(["cam-1", "cam-2"])
    if rng.random() < 0.5:
        event["streamId"] = "s-1"
    return event


def seed(stores: list[Store]) -> None:
    rng = random.Random(20261203)
    bodies = [_event(rng, i, rng.choice(["uc1", "uc2"])) for i in range(240)]
    # Sent again, changed: replaces the first version on both stores.
    bodies += [{**body, "eventType": "custom", "customMetadata": {"temperature": 999}} for body in bodies[:20]]
    for store in stores:
        store.migrate()
        for uc, status in (("uc1", ACTIVE), ("uc2", ACTIVE), ("uc3", INACTIVE)):
            store.put_use_case(UseCaseRecord(1, uc, f"name {uc}", status, CREATED, CREATED))
        store.put_use_case(UseCaseRecord(1, "uc2", "renamed", INACTIVE, CREATED, CREATED + timedelta(hours=1)))
        for start in range(0, len(bodies), 50):
            send(store, bodies[start:start + 50])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, chdb_url: Any) -> Iterator[tuple[Store, Store]]:
    duck: Store = DuckDBStore(str(tmp_path_factory.mktemp("events") / "events.duckdb"))
    chdb = open_store(chdb_url("events"))
    seed([duck, chdb])
    yield duck, chdb
    duck.close()
    chdb.close()


def _pages(store: Store, query: EventQuery) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        page = store.query_events(1, EventQuery(**{**_fields(query), "after": after}))
        if not page:
            return pages
        pages.append([e.event_id for e in page])
        last = page[-1]
        after = ((last.ts - datetime(1970, 1, 1)) // timedelta(microseconds=1), last.event_id)


def _fields(query: EventQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in query.__dataclass_fields__}


QUERIES = [
    EventQuery("uc1", 1000),
    EventQuery("uc2", 13),
    EventQuery("uc1", 7, event_types=("quality_check", "custom")),
    EventQuery("uc1", 9, start=(NOW - timedelta(hours=2)).replace(tzinfo=None),
               end=(NOW - timedelta(hours=1)).replace(tzinfo=None)),
    EventQuery("uc1", 11, contexts=(ContextTerm("device_id", True, "cam-1"),)),
    EventQuery("uc1", 11, contexts=(ContextTerm("device_id", False, "cam-1"), ContextTerm("stream_id", True, "s-1"))),
    EventQuery("uc1", 11, contexts=(ContextTerm("external_id", True, "x3"),)),
    EventQuery("uc1", 10, meta=(typed_term("temperature", "gte", 150), typed_term("temperature", "lt", 160))),
    EventQuery("uc1", 10, meta=(typed_term("temperature", "eq", "150"),)),
    EventQuery("uc1", 10, meta=(typed_term("ok", "eq", True), MetaTerm.equal("ve.data.result", "fail"))),
    EventQuery("uc2", 10, meta=(typed_term("line", "neq", "a"),)),
    EventQuery("uc1", 6, detection=Filters(classes=("dent",))),
    EventQuery("uc1", 6, detection=Filters(classes=("dent", "scratch"), min_confidence=0.5)),
    EventQuery("uc1", 10, feedback=("correct",)),
    EventQuery("uc1", 10, feedback=("incorrect", "inconclusive")),
    EventQuery("uc2", 10, feedback=("none",)),
    EventQuery("uc1", 10, feedback=("correct", "none"), event_types=("quality_check",)),
    # The seed's event data is a quality check's whatever the type: the others are warned.
    EventQuery("uc1", 10, warnings=True),
    EventQuery("uc1", 10, warnings=False),
    EventQuery("uc2", 10, warnings=True, event_types=("custom", "inventory_count")),
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_queries_and_pages_agree(stores: tuple[Store, Store], query: EventQuery) -> None:
    duck, chdb = stores
    pages = _pages(duck, query)
    assert pages == _pages(chdb, query)
    ids = [i for page in pages for i in page]
    assert len(ids) == len(set(ids))  # no event twice across pages
    assert all(len(page) <= query.limit for page in pages)
    first = duck.query_events(1, query)
    assert [(e.event_id, e.ts, e.received_at, e.body, e.warnings) for e in first] == \
        [(e.event_id, e.ts, e.received_at, e.body, e.warnings) for e in chdb.query_events(1, query)]
    if query.warnings is not None:
        assert ids and all(bool(e.warnings) is query.warnings for e in first)


def test_a_resent_event_replaces_the_first(stores: tuple[Store, Store]) -> None:
    for store in stores:
        everything = [e for uc in ("uc1", "uc2") for e in store.query_events(1, EventQuery(uc, 1000))]
        assert len(everything) == 240
        again = [e for e in everything if e.event_id < "evt-0020"]
        assert len(again) == 20
        assert all('"temperature":999' in e.body and '"eventType":"custom"' in e.body for e in again)
        hot = [e.event_id for uc in ("uc1", "uc2")
               for e in store.query_events(1, EventQuery(uc, 1000, meta=(typed_term("temperature", "gt", 900),)))]
        assert sorted(hot) == sorted(e.event_id for e in again)


def test_use_cases_figures_and_schemas_agree(stores: tuple[Store, Store]) -> None:
    duck, chdb = stores
    assert duck.use_cases(1) == chdb.use_cases(1)
    assert [(u.id, u.name, u.status) for u in duck.use_cases(1)] == [
        ("uc1", "name uc1", ACTIVE), ("uc2", "renamed", INACTIVE), ("uc3", "name uc3", INACTIVE)]
    assert duck.use_case_figures(1) == chdb.use_case_figures(1)
    assert sum(f.events for f in duck.use_case_figures(1).values()) == 240
    for images in (False, True):
        assert duck.event_schema(1, "uc1", images) == chdb.event_schema(1, "uc1", images)
    assert "string:temperature" in duck.event_schema(1, "uc1", False)
    assert duck.event_schema(1, "uc1", True) == ["number:exposure", "string:exposure"]
    assert duck.use_cases(2) == chdb.use_cases(2) == []


def test_feedback_histories_and_latest_verdicts_agree(stores: tuple[Store, Store]) -> None:
    duck, chdb = stores
    reviewed = [f"evt-{i:04d}" for i in range(60)]
    found = duck.find_events(1, [*reviewed, "nope"])
    assert found == chdb.find_events(1, [*reviewed, "nope"])
    assert [e.event_id for e in found] == reviewed and all(e.use_case_id in ("uc1", "uc2") for e in found)
    histories = 0
    for event_id in reviewed:
        history = duck.feedback_of(1, event_id)
        assert history == chdb.feedback_of(1, event_id)
        assert all(e.event_type == "operator_feedback" for e in history)
        verdicts = duck.metadata_of(1, [event_id]).get(event_id, {}).get(FEEDBACK_FIELD)
        if history:
            assert verdicts in VERDICTS
        histories += len(history) > 1
    assert histories  # some events were reviewed more than once
    for verdict in VERDICTS:
        marked = {e.event_id for uc in ("uc1", "uc2")
                  for e in duck.query_events(1, EventQuery(uc, 1000, feedback=(verdict,)))}
        assert marked and all(duck.metadata_of(1, [m])[m][FEEDBACK_FIELD] == verdict for m in marked)


def test_images_are_inferences_of_the_event(stores: tuple[Store, Store]) -> None:
    duck, chdb = stores
    with_images = next(e for e in duck.query_events(1, EventQuery("uc1", 1000)) if '"sourceId"' in e.body)
    rows = duck.get_inference(1, with_images.event_id)
    assert rows == chdb.get_inference(1, with_images.event_id)
    assert rows and all(r.source == "vision-events" and r.image_width == 640 for r in rows)
    assert duck.metadata_of(1, [with_images.event_id]) == chdb.metadata_of(1, [with_images.event_id])


def test_delete_removes_only_the_use_cases_events(stores: tuple[Store, Store]) -> None:
    for store in stores:
        ids = [e.event_id for e in store.query_events(1, EventQuery("uc2", 5))]
        # Another use case's id and an unknown one are not deleted.
        other = store.query_events(1, EventQuery("uc1", 1))[0].event_id
        assert store.delete_events(1, "uc2", [*ids, other, "nope"]) == sorted(ids)
        left = {e.event_id for e in store.query_events(1, EventQuery("uc2", 1000))}
        assert not left & set(ids)
        assert store.query_events(1, EventQuery("uc1", 1))[0].event_id == other
        assert store.delete_events(1, "uc2", ids) == []
    duck, chdb = stores
    assert _pages(duck, EventQuery("uc2", 50)) == _pages(chdb, EventQuery("uc2", 50))


def test_an_event_without_images_is_still_an_event(stores: tuple[Store, Store]) -> None:
    for store in stores:
        bare = [e for e in store.query_events(1, EventQuery("uc1", 1000)) if '"images":[]' in e.body]
        assert bare
        assert store.get_inference(1, bare[0].event_id) == []


def test_a_sweep_removes_the_events_past_the_days_policy(stores: tuple[Store, Store]) -> None:
    """Last in this file: it deletes from the shared stores."""
    before = (NOW - timedelta(hours=2)).replace(tzinfo=None)
    results = [store.sweep(1, before, None, None) for store in stores]
    assert results[0] == results[1] and results[0].events > 0
    for store in stores:
        assert all(e.ts >= before for uc in ("uc1", "uc2") for e in store.query_events(1, EventQuery(uc, 1000)))
        assert store.sweep(1, before, None, None).events == 0
    duck, chdb = stores
    assert _pages(duck, EventQuery("uc1", 50)) == _pages(chdb, EventQuery("uc1", 50))
    # The events the sweep leaves keep their ingestion warnings.
    kept = [[(e.event_id, e.warnings) for e in store.query_events(1, EventQuery("uc1", 1000))] for store in stores]
    assert kept[0] == kept[1] and any(w for _, w in kept[0])


def send(store: Store, bodies: list[dict[str, Any]], sizes: dict[str, Size] | None = None,
         received_us: int = 1_000_000) -> None:
    """One request's events written as the API writes them: the latest version of each id,
    replacing what a changed one wrote (image `s1` is 640 x 480 unless `sizes` says otherwise)."""
    prepared = [(decode_one(msgspec.json.encode(b), NOW), str(b["useCaseId"])) for b in bodies]
    rows, meta, events = to_rows(prepared, 1, {"s1": Size(640, 480)} if sizes is None else sizes, received_us)
    sent = {p.event.eventId: p.body for p, _ in prepared}
    store_events(store, [Write(1, rows, meta, events, sent, [], EventTables.of(rows, meta, events))])


def _figures(store: Store) -> Any:
    window = Filters(start=NOW - timedelta(days=1), end=NOW + timedelta(hours=1))
    return (store.totals(1, window), store.distributions(1, window, 10), store.get_inference(1, "r1"),
            store.metadata_of(1, ["r1", "r2"]), store.group_table(1, window, "meta.a"),
            [(e.body, e.warnings) for e in store.query_events(1, EventQuery("uc1", 10))])


def test_a_changed_resent_event_replaces_its_inferences_and_metadata(tmp_path_factory: pytest.TempPathFactory,
                                                                     chdb_url: Any) -> None:
    folder = tmp_path_factory.mktemp("replace")
    first = {"eventId": "r1", "eventType": "custom", "useCaseId": "uc1", "timestamp": NOW.isoformat(),
             "customMetadata": {"a": 1, "b": "x"}, "eventData": {"result": "fail"},
             "images": [{"objectDetections": [{"class": "scratch", "x": 1, "y": 1, "width": 2, "height": 2,
                                               "confidence": 0.4}]}] * 2}
    second = {**first, "customMetadata": {"a": 5}, "eventData": {}, "timestamp": (NOW - timedelta(hours=3)).isoformat(),
              "images": [{"classifications": [{"class": "dent", "confidence": 0.8}]}]}
    other = {**first, "eventId": "r2"}
    stores = [DuckDBStore(str(folder / "a.duckdb")), open_store(chdb_url("replace_a"))]
    fresh = [DuckDBStore(str(folder / "b.duckdb")), open_store(chdb_url("replace_b"))]
    try:
        for store in stores:
            store.migrate()
            send(store, [first, other], sizes={}, received_us=2_000_000)
            _figures(store)  # the caches are made from the first version
            send(store, [second], sizes={}, received_us=2_000_000)
            send(store, [second], sizes={}, received_us=2_000_000)  # a retry of the same body changes nothing
        for store in fresh:
            store.migrate()
            send(store, [other, second], sizes={}, received_us=2_000_000)
        assert _figures(stores[0]) == _figures(stores[1]) == _figures(fresh[0]) == _figures(fresh[1])
        (row,) = stores[0].get_inference(1, "r1")
        assert row.task == "classification" and row.predictions[0]["class"] == "dent"
        assert stores[0].metadata_of(1, ["r1"])["r1"] == {"a": 5, "ve.use_case": "uc1", "ve.event_type": "custom"}
        # The first version's warning went with it (the second fits its type); r2 keeps its own.
        for store in stores:
            assert [(e.event_id, e.warnings) for e in store.query_events(1, EventQuery("uc1", 10))] == [
                ("r2", ("eventData.result: not a field of custom events (value, externalId), kept as sent",)),
                ("r1", ())]
            assert [e.event_id for e in store.query_events(1, EventQuery("uc1", 10, warnings=True))] == ["r2"]
    finally:
        for store in stores + fresh:
            store.close()
