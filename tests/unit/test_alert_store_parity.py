"""Alert rules, states, history, retention sweeps and usage: DuckDB and ClickHouse (on chdb) keep
and answer the same, through the same `Store` calls."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.store import open_store
from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState, ImageRecord, RetentionPolicy, Store
from inferwatch.store.duckdb import DuckDBStore

T0 = datetime(2026, 5, 1, 12, 0)


def _stores(tmp_path: Path, chdb_url: Any, name: str) -> list[Store]:
    stores: list[Store] = [DuckDBStore(str(tmp_path / f"{name}.duckdb")), open_store(chdb_url(name))]
    for store in stores:
        store.migrate()
        store.create_workspace("alpha", "a")
        store.create_workspace("beta", "b")
    return stores


def test_rules_states_and_events(tmp_path: Path, chdb_url: Any) -> None:
    answers = []
    for store in _stores(tmp_path, chdb_url, "alerts"):
        store.put_alert_rule(AlertRuleRecord(1, "r1", '{"v": 1}', T0, T0))
        store.put_alert_rule(AlertRuleRecord(1, "r2", '{"v": 2}', T0, T0))
        store.put_alert_rule(AlertRuleRecord(2, "r1", '{"v": 3}', T0, T0))
        store.put_alert_rule(AlertRuleRecord(1, "r1", '{"v": 4}', T0 + timedelta(hours=1), T0 + timedelta(hours=1)))
        store.set_alert_state(1, "r1", AlertState("ok", T0, 0.5, T0))
        store.set_alert_state(1, "r1", AlertState("warning", T0 + timedelta(minutes=1), 0.2, T0 + timedelta(minutes=1)))
        store.set_alert_state(1, "r2", AlertState("ok", T0, None, T0))
        for i, (state, previous, notified) in enumerate(
                [("warning", "ok", True), ("ok", "warning", True), ("critical", "ok", False)]):
            store.add_alert_event(AlertEvent(1, "r1", T0 + timedelta(minutes=i), state, previous, 0.1 * i, notified,
                                             '{"channels": []}'))
        store.add_alert_event(AlertEvent(2, "r1", T0, "warning", "ok", None, True, "{}"))
        assert store.delete_alert_rule(1, "r2") is True
        assert store.delete_alert_rule(1, "r2") is False
        answers.append((
            store.alert_rules(None), store.alert_rules(1), store.alert_rules(3),
            store.alert_states(1), store.alert_states(2),
            store.alert_events(1, None, 10), store.alert_events(1, "r1", 2), store.alert_events(2, "nope", 10),
            store.notifications_since(1, "r1", T0), store.notifications_since(1, "r1", T0 + timedelta(seconds=30)),
        ))
        store.close()
    duck, chdb = answers
    assert duck == chdb
    rules = duck[0]
    assert [(r.ws, r.rule_id, r.spec) for r in rules] == [(1, "r1", '{"v": 4}'), (2, "r1", '{"v": 3}')]
    assert rules[0].created_at == T0  # an update keeps when the rule was made
    assert duck[3] == {"r1": AlertState("warning", T0 + timedelta(minutes=1), 0.2, T0 + timedelta(minutes=1))}
    assert [e.state for e in duck[5]] == ["critical", "ok", "warning"]
    assert duck[8:] == (2, 1)


def _rows(ws: int, ids: list[tuple[str, int, datetime]]) -> InferenceRows:
    rows = InferenceRows()
    for inference_id, index, ts in ids:
        us = int((ts - datetime(1970, 1, 1)) / timedelta(microseconds=1))
        rows.ws.append(ws)
        rows.inference_id.append(inference_id)
        rows.image_index.append(index)
        rows.ts_us.append(us)
        rows.received_us.append(us)
        rows.model_id.append("m/1")
        rows.task.append("object-detection")
        rows.device_id.append("cam")
        rows.tags.append([])
        rows.source.append("native")
        rows.inference_time.append(0.01)
        rows.image_width.append(None)
        rows.image_height.append(None)
        rows.extra.append(None)
        rows.n_predictions.append(0)
    return rows


@pytest.mark.parametrize("policy", ["days", "count", "both", "images"])
def test_sweep(tmp_path: Path, chdb_url: Any, policy: str) -> None:
    answers = []
    for store in _stores(tmp_path, chdb_url, f"sweep_{policy}"):
        ids = [(f"i{d:02d}", 0, T0 - timedelta(days=d)) for d in range(10)]
        ids.append(("i05", 1, T0 + timedelta(minutes=1)))  # a second image of an old id, kept
        meta = MetadataRows()
        for inference_id, _, ts in ids:
            meta.add(1, inference_id, "line", "a", int((ts - datetime(1970, 1, 1)) / timedelta(microseconds=1)))
        meta.add(1, "not-arrived-yet", "line", "b", 0)
        store.append(_rows(1, ids), meta)
        store.append(_rows(2, [("i09", 0, T0 - timedelta(days=9))]), MetadataRows())
        for ws, sha, days in [(1, "a" * 64, 40), (1, "b" * 64, 1), (2, "a" * 64, 40), (1, "c" * 64, 40)]:
            store.insert_image(ImageRecord(ws, sha, None, "image/png", 1, 1, 100, None, None, None, [],
                                           T0 - timedelta(days=days)))
        before = T0 - timedelta(days=3, hours=12) if policy in ("days", "both") else None
        keep = 6 if policy in ("count", "both") else None
        images_before = T0 - timedelta(days=30) if policy == "images" else None
        assert store.image(1, "a" * 64) is not None  # read (and kept by a store that keeps reads) before
        result = store.sweep(1, before, keep, images_before)
        assert (store.image(1, "a" * 64) is None) == (policy == "images")  # a swept image is gone
        # A swept inference's identity goes with it: sent again, it is stored again.
        resent = store.append(_rows(1, [("i09", 0, T0 - timedelta(days=9))]), MetadataRows())
        assert resent == (0 if policy == "images" else 1)
        store.sweep(1, before, keep, images_before)
        answers.append((result, store.totals(1, _everything()).inferences,
                        sorted(store.metadata_of(1, [i for i, _, _ in ids] + ["not-arrived-yet"])),
                        store.totals(2, _everything()).inferences,
                        {t: u["rows"] for t, u in store.usage(1).items()}))
        store.close()
    duck, chdb = answers
    assert duck == chdb
    result, left, with_meta, other, usage = duck
    if policy == "days":  # days 0..3 stay, and the new image of i05
        assert (result.inferences, left) == (6, 5)
        assert with_meta == ["i00", "i01", "i02", "i03", "i05", "not-arrived-yet"]
    elif policy == "count":
        assert (result.inferences, left) == (5, 6)
        assert with_meta == ["i00", "i01", "i02", "i03", "i04", "i05", "not-arrived-yet"]
    elif policy == "both":
        assert left == 5
    else:
        assert (result.inferences, result.images, result.orphan_images) == (0, 2, ["c" * 64])
        assert usage["images"] == 1
    assert other == 1  # another workspace's data is never touched
    assert usage["inferences"] == left


def _everything() -> Any:
    from inferwatch.query.filters import Filters

    return Filters()


def test_retention_policies(tmp_path: Path, chdb_url: Any) -> None:
    answers = []
    for store in _stores(tmp_path, chdb_url, "policies"):
        store.set_retention_policy(1, RetentionPolicy(30, None, 7))
        store.set_retention_policy(2, RetentionPolicy(None, 1000, None))
        store.set_retention_policy(2, RetentionPolicy(None, 500, None))
        store.set_retention_policy(1, None)
        answers.append((store.retention_policies(), store.retention_policy(1), store.retention_policy(2)))
        store.close()
    assert answers[0] == answers[1] == ({2: RetentionPolicy(None, 500, None)}, None, RetentionPolicy(None, 500, None))


def test_clickhouse_days_policy_is_a_ttl(chdb_url: Any) -> None:
    """Without any sweep, ClickHouse's own merges drop what a workspace's days policy has expired,
    from the inferences, their identities and their metadata, and keep the rest and other
    workspaces' rows."""
    from inferwatch.store.clickhouse import ClickHouseStore

    store = open_store(chdb_url("ttl"))
    assert isinstance(store, ClickHouseStore)
    store.migrate()
    store.create_workspace("alpha", "a")
    store.create_workspace("beta", "b")
    now = datetime.utcnow().replace(microsecond=0)
    ids = [(f"i{d:02d}", 0, now - timedelta(days=d)) for d in (0, 2, 5, 9)]
    meta = MetadataRows()
    for inference_id, _, _ in ids:
        meta.add(1, inference_id, "line", "a", int((now - datetime(1970, 1, 1)) / timedelta(microseconds=1)))
    meta.add(1, "written-long-ago", "line", "b", int((now - timedelta(days=30) - datetime(1970, 1, 1))
                                                    / timedelta(microseconds=1)))
    store.append(_rows(1, ids), meta)
    store.append(_rows(2, ids), MetadataRows())
    store.set_retention_policy(1, RetentionPolicy(4, None, None))
    client = store._client()

    def merge() -> None:
        """What ClickHouse does on its own in time: finish the parts' expiry recalculation (a
        background mutation), then merge."""
        deadline = time.monotonic() + 60
        while client.query("SELECT count() FROM system.mutations WHERE database = currentDatabase()"
                           " AND NOT is_done").result_rows[0][0]:
            assert time.monotonic() < deadline, "mutations still running"
            time.sleep(0.05)
        for table in ("inferences", "identity_keys", "metadata"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")

    merge()

    def column(sql: str) -> list[Any]:
        return sorted(r[0] for r in client.query(sql).result_rows)

    assert column("SELECT inference_id FROM inferences WHERE ws = 1") == ["i00", "i02"]
    assert column("SELECT inference_id FROM identity_keys WHERE ws = 1") == ["i00", "i02"]
    assert column("SELECT inference_id FROM metadata WHERE ws = 1") == ["i00", "i02", "i05", "i09"]
    assert column("SELECT inference_id FROM inferences WHERE ws = 2") == ["i00", "i02", "i05", "i09"]
    store.set_retention_policy(1, None)  # cleared: nothing more expires
    store.append(_rows(1, [("old", 0, now - timedelta(days=40))]), MetadataRows())
    merge()
    assert column("SELECT inference_id FROM inferences WHERE ws = 1") == ["i00", "i02", "old"]
    store.close()
