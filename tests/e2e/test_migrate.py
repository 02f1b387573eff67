"""`inferwatch migrate`: an embedded store copied into ClickHouse answers every query as before,
and a copy stopped halfway goes on from where it stopped without copying anything twice."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from inferwatch.ingest.vision_events import decode_one, to_rows
from inferwatch.query.filters import Filters
from inferwatch.query.performance import GroundTruth
from inferwatch.store import open_store
from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState, RetentionPolicy, Store
from inferwatch.store.clickhouse import ClickHouseStore
from inferwatch.store.clickhouse.importer import copy_store, open_source
from inferwatch.store.clickhouse.schema import NO_TIME
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.events import EventQuery, UseCaseRecord
from tests.unit.test_store_parity import BASE, FILTERS, _all_pages, same, seed

pytestmark = pytest.mark.process  # starts inferwatch processes of its own


class Stop(Exception):
    """Stands for whatever stops a copy halfway (Ctrl-C, a lost connection)."""


def _answers_agree(duck: Store, target: Store) -> None:
    for filters in FILTERS[:6]:
        same(duck.totals(1, filters), target.totals(1, filters), "totals")
        same(duck.series(1, filters, timedelta(hours=1), "meta.line"),
             target.series(1, filters, timedelta(hours=1), "meta.line"), "series")
    same(_all_pages(duck, 1, Filters(), 250), _all_pages(target, 1, Filters(), 250), "pages")
    same(duck.devices(1, BASE - timedelta(days=1), BASE + timedelta(days=1)),
         target.devices(1, BASE - timedelta(days=1), BASE + timedelta(days=1)), "devices")
    same(duck.metadata_fields(2, 5), target.metadata_fields(2, 5), "metadata_fields")
    same([(w.id, w.slug, w.key_hash) for w in duck.workspaces()],
         [(w.id, w.slug, w.key_hash) for w in target.workspaces()], "workspaces")
    assert target.image(1, "ab" * 32) == duck.image(1, "ab" * 32)
    same(duck.ground_truth(1, "m/1"), target.ground_truth(1, "m/1"), "ground truth")
    same(duck.alert_rules(None), target.alert_rules(None), "alert rules")
    same(duck.alert_states(1), target.alert_states(1), "alert states")
    same(duck.alert_events(1, None, 100), target.alert_events(1, None, 100), "alert history")
    same(duck.retention_policies(), target.retention_policies(), "retention")
    same(duck.use_cases(1), target.use_cases(1), "use cases")
    same(duck.query_events(1, EventQuery("uc", 100)), target.query_events(1, EventQuery("uc", 100)), "events")
    warned = target.query_events(1, EventQuery("uc", 100, warnings=True))
    assert [(e.event_id, e.warnings) for e in warned] == [("e1", ("eventData.value: expected a string, kept as sent",))]


def _settings(duck: Store) -> None:
    """What a workspace set up besides its data: all of it goes along."""
    at = BASE + timedelta(hours=2)
    duck.set_ground_truth(1, "m/1", GroundTruth(label_field="expected", label_map={"ok": "none"}))
    duck.put_alert_rule(AlertRuleRecord(1, "slow", '{"metric": "p95_inference_time"}', BASE, at))
    duck.set_alert_state(1, "slow", AlertState("warning", at, 0.4, at))
    for minute, (state, previous) in enumerate([("warning", "ok"), ("ok", "warning"), ("warning", "ok")]):
        duck.add_alert_event(AlertEvent(1, "slow", at + timedelta(minutes=minute), state, previous, 0.4,
                                        True, "{}"))
    duck.set_retention_policy(1, RetentionPolicy(3650, None, 30))
    duck.put_use_case(UseCaseRecord(1, "uc", "line qa", "active", BASE, at))
    now = datetime.now(UTC)
    events = [(decode_one(json.dumps({"eventId": f"e{i}", "eventType": "custom", "useCaseId": "uc",
                                      "timestamp": (now - timedelta(minutes=i)).isoformat(),
                                      "eventData": {"value": i if i == 1 else str(i)}}).encode(), now), "uc")
              for i in range(3)]  # e1 with an ingestion warning, which goes along
    duck.put_events(to_rows(events, 1, {}, 1_000_000)[2])


def test_a_stopped_copy_resumes_and_the_copy_answers_as_the_original(
        tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    path = tmp_path / "inferwatch.duckdb"
    duck = DuckDBStore(str(path))
    seed([duck])
    _settings(duck)
    duck.close()
    target = open_store(chdb_url("migrated"))
    assert isinstance(target, ClickHouseStore)
    source = open_source(str(path))
    seen: list[int] = []

    def stop_after_three_chunks(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 4:
            raise Stop

    with pytest.raises(Stop):
        copy_store(source, str(path), target, 100, stop_after_three_chunks)
    first = seen[-1]
    assert first == 300  # three chunks of 100, recorded as copied
    again = copy_store(source, str(path), target, 100)
    assert again.resumed_at == first
    (total,) = source.cursor().execute("SELECT count(*) FROM inferences").fetchone() or (0,)
    assert again.resumed_at + again.inferences == total
    assert again.new_inferences == again.inferences  # the resumed part held nothing stored yet
    # A run after the copy is complete finds nothing new (metadata and devices are copied again,
    # into tables where a second copy is the same row).
    last = copy_store(source, str(path), target, 100)
    assert (last.new_inferences, last.settings, last.alert_events) == (0, 4, 0)  # no event twice
    assert again.vision_events == last.vision_events == 4  # a use case and three events, replaced again
    assert len(target.alert_events(1, None, 100)) == 3
    source.close()
    # The copied metadata carries its inferences' times (schema migration 13), wherever that is one.
    ((timed, untimed),) = target._rows(
        f"SELECT countIf(m.ts != {NO_TIME}), countIf(m.ts = {NO_TIME}) FROM metadata AS m FINAL"
        " JOIN (SELECT ws, inference_id FROM identity_keys GROUP BY ws, inference_id HAVING uniqExact(ts) = 1) AS k"
        " ON k.ws = m.ws AND k.inference_id = m.inference_id", {})
    assert timed > 0 and untimed == 0

    duck = DuckDBStore(str(path))
    try:
        _answers_agree(duck, target)
    finally:
        duck.close()
        target.close()


def test_cli_copies_with_a_progress_bar_and_refuses_a_store_in_use(tmp_path: Path) -> None:
    path = tmp_path / "inferwatch.duckdb"
    duck = DuckDBStore(str(path))
    seed([duck])
    duck.close()

    def migrate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "inferwatch", "migrate", *args],
                              capture_output=True, text=True, timeout=300)

    # The target is another process's chdb, so it has a data folder of its own.
    done = migrate("--from", f"duckdb://{path}", "--to", f"chdb://{tmp_path / 'ch'}", "--chunk-rows", "1000")
    assert done.returncode == 0, done.stderr
    assert "copied 2 workspaces" in done.stdout
    assert "inferences" in done.stderr  # the progress bar
    held = DuckDBStore(str(path))
    try:
        locked = migrate("--from", f"duckdb://{path}", "--to", f"chdb://{tmp_path / 'ch2'}")
    finally:
        held.close()
    assert locked.returncode == 1
    assert "in use" in locked.stderr
    wrong = migrate("--from", f"chdb://{tmp_path / 'ch'}", "--to", f"chdb://{tmp_path / 'ch'}")
    assert wrong.returncode == 1
    assert "duckdb:///path" in wrong.stderr


def test_events_of_a_store_from_before_ingestion_warnings_are_copied_without_any(
        tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    path = tmp_path / "inferwatch.duckdb"
    duck = DuckDBStore(str(path))
    duck.migrate()
    _settings(duck)
    duck.close()
    # The store as migration 13 left it: no `warnings` column yet.
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE events DROP COLUMN warnings")
    con.execute("DELETE FROM schema_version WHERE version = 14")
    con.close()
    target = open_store(chdb_url("before_warnings"))
    assert isinstance(target, ClickHouseStore)
    source = open_source(str(path))
    try:
        assert copy_store(source, str(path), target, 100).vision_events == 4
        copied = target.query_events(1, EventQuery("uc", 100))
        assert [(e.event_id, e.warnings) for e in copied] == [("e0", ()), ("e1", ()), ("e2", ())]
        assert target.query_events(1, EventQuery("uc", 100, warnings=True)) == []
    finally:
        source.close()
        target.close()
