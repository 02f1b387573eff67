"""Alert rules, their state and history, retention and usage on ClickHouse (migration 4): the twin
of `store/duckdb/alerts.py`.

Rules, states and policies are ReplacingMergeTrees read with FINAL (a deleted rule or policy is a
newer row saying so); events are appended. A days policy is also a table TTL (schema migration
6): the engine drops expired rows as it merges, and the sweep makes that exact at once, with
lightweight `DELETE FROM`s, which hide the rows immediately (the inference table takes a
mutation, see `sweep`). The sweep also keeps the count policy and images, which no TTL can. The
identities in `identity_keys` go too, so an inference sent again after its sweep is stored
again, as on DuckDB.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState, RetentionPolicy, SweepResult
from inferwatch.store.clickhouse import made
from inferwatch.store.clickhouse.healing import GuardedClient
from inferwatch.store.clickhouse.schema import TTL_TABLES
from inferwatch.store.clickhouse.sql import Params
from inferwatch.store.paging import below
from inferwatch.store.rows import USAGE_TABLES, naive_utc, now_utc

_EVENT_COLUMNS = ["ws", "rule_id", "fired_at", "state", "previous", "value", "notified", "detail"]


class AlertStore:
    """Needs the host's `_rows()` and `_client()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _client(self) -> GuardedClient:
        raise NotImplementedError

    _database: str

    # -- alerts ----------------------------------------------------------------------------
    def alert_rules(self, ws: int | None) -> list[AlertRuleRecord]:
        p = Params()
        where = f" AND ws = {p.add(ws, 'Int32')}" if ws is not None else ""
        rows = self._rows(
            f"SELECT ws, rule_id, spec, created_at, updated_at FROM alert_rules FINAL WHERE deleted = 0{where}"
            " ORDER BY ws, rule_id", p)
        return [AlertRuleRecord(w, r, s, naive_utc(c), naive_utc(u)) for w, r, s, c, u in rows]

    def put_alert_rule(self, record: AlertRuleRecord) -> None:
        p = Params()
        stored = self._rows(
            f"SELECT created_at FROM alert_rules FINAL WHERE ws = {p.add(record.ws, 'Int32')}"
            f" AND rule_id = {p.add(record.rule_id, 'String')} AND deleted = 0", p)
        created = naive_utc(stored[0][0]) if stored else record.created_at
        self._client().insert(
            "alert_rules", [[record.ws, record.rule_id, record.spec, 0, created, record.updated_at]],
            column_names=["ws", "rule_id", "spec", "deleted", "created_at", "updated_at"])

    def delete_alert_rule(self, ws: int, rule_id: str) -> bool:
        found = [r for r in self.alert_rules(ws) if r.rule_id == rule_id]
        if not found:
            return False
        now = max(now_utc(), found[0].updated_at)
        self._client().insert(
            "alert_rules", [[ws, rule_id, "", 1, found[0].created_at, now]],
            column_names=["ws", "rule_id", "spec", "deleted", "created_at", "updated_at"])
        p = Params()
        self._client().command(
            f"DELETE FROM alert_state WHERE ws = {p.add(ws, 'Int32')} AND rule_id = {p.add(rule_id, 'String')}",
            parameters=p)
        return True

    def alert_states(self, ws: int) -> dict[str, AlertState]:
        p = Params()
        rows = self._rows(
            "SELECT rule_id, state, since, value, evaluated_at FROM alert_state FINAL"
            f" WHERE ws = {p.add(ws, 'Int32')}", p)
        return {r: AlertState(s, naive_utc(since), v, naive_utc(at)) for r, s, since, v, at in rows}

    def set_alert_state(self, ws: int, rule_id: str, state: AlertState) -> None:
        self._client().insert(
            "alert_state", [[ws, rule_id, state.state, state.since, state.value, state.evaluated_at]],
            column_names=["ws", "rule_id", "state", "since", "value", "evaluated_at"])

    def add_alert_event(self, event: AlertEvent) -> None:
        self._client().insert(
            "alert_events", [[event.ws, event.rule_id, event.at, event.state, event.previous, event.value,
                              int(event.notified), event.detail]], column_names=_EVENT_COLUMNS)

    def alert_events(self, ws: int, rule_id: str | None, limit: int) -> list[AlertEvent]:
        p = Params()
        extra = f" AND rule_id = {p.add(rule_id, 'String')}" if rule_id is not None else ""
        rows = self._rows(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM alert_events WHERE ws = {p.add(ws, 'Int32')}{extra}"
            f" ORDER BY fired_at DESC, rule_id DESC, state DESC LIMIT {int(limit):d}", p)
        return [AlertEvent(w, r, naive_utc(at), s, prev, v, bool(n), d) for w, r, at, s, prev, v, n, d in rows]

    def notifications_since(self, ws: int, rule_id: str, since: datetime) -> int:
        p = Params()
        rows = self._rows(
            f"SELECT count() FROM alert_events WHERE ws = {p.add(ws, 'Int32')}"
            f" AND rule_id = {p.add(rule_id, 'String')} AND fired_at >= {p.time(since)} AND notified = 1", p)
        return int(rows[0][0])

    # -- retention -------------------------------------------------------------------------
    def retention_policy(self, ws: int) -> RetentionPolicy | None:
        return self.retention_policies().get(ws)

    def set_retention_policy(self, ws: int, policy: RetentionPolicy | None) -> None:
        if policy is None:
            p = Params()
            self._client().command(f"DELETE FROM retention WHERE ws = {p.add(ws, 'Int32')}", parameters=p)
            self.reload_policies()
            return
        self._client().insert(
            "retention", [[ws, policy.max_days, policy.max_inferences, policy.image_max_days, now_utc()]],
            column_names=["ws", "max_days", "max_inferences", "image_max_days", "updated_at"])
        self.reload_policies()

    def reload_policies(self) -> None:
        """The TTLs read the days from a dictionary, which would reload on its own within a
        minute; but each part keeps the expiry worked out when it was written, so a changed
        policy also has every part work its expiry out again (only that: it reads the time and
        workspace columns, rewrites no rows; merges then drop what expired)."""
        client = self._client()
        client.command(f"SYSTEM RELOAD DICTIONARY {self._database}.retention_days")
        for table in TTL_TABLES:
            client.command(f"ALTER TABLE {table} MATERIALIZE TTL")

    def retention_policies(self) -> dict[int, RetentionPolicy]:
        rows = self._rows("SELECT ws, max_days, max_inferences, image_max_days FROM retention FINAL ORDER BY ws", {})
        return {ws: RetentionPolicy(d, n, i) for ws, d, n, i in rows}

    def sweep(self, ws: int, before: datetime | None, keep_newest: int | None,
              images_before: datetime | None) -> SweepResult:
        p = Params()
        doomed = self._doomed(ws, before, keep_newest, p)
        inferences = metadata = 0
        client = self._client()
        w = p.add(ws, "Int32")
        if doomed:
            selected = f"ws = {w} AND ({doomed})"
            ((inferences,),) = self._rows(f"SELECT count() FROM inferences WHERE {selected}", p)
            gone = (f"SELECT inference_id FROM inferences WHERE {selected} AND inference_id NOT IN"
                    f" (SELECT inference_id FROM inferences WHERE ws = {w} AND NOT ({doomed}))")
            ((metadata,),) = self._rows(
                f"SELECT count() FROM metadata FINAL WHERE ws = {w} AND inference_id IN ({gone})", p)
            # Metadata first: were the sweep cut short, what stays is an inference without its
            # metadata, swept again next time, never metadata pointing at nothing.
            client.command(f"DELETE FROM metadata WHERE ws = {w} AND inference_id IN ({gone})", parameters=p)
            client.command(
                f"DELETE FROM identity_keys WHERE ws = {w} AND (inference_id, image_index) IN"
                f" (SELECT inference_id, image_index FROM inferences WHERE {selected})", parameters=p)
            # A mutation, not a lightweight DELETE: that one fails on the table's MATERIALIZED
            # columns (their lambdas are re-analysed without the predictions' names in scope).
            client.command(f"ALTER TABLE inferences DELETE WHERE {selected} SETTINGS mutations_sync = 1",
                           parameters=p)
        images: list[str] = []
        orphans: list[str] = []
        if images_before is not None:
            q = Params()
            wi = q.add(ws, "Int32")
            images = [r[0] for r in self._rows(
                f"SELECT sha256 FROM images FINAL WHERE ws = {wi} AND uploaded_at < {q.time(images_before)}", q)]
            if images:
                listed = q.add(images, "Array(String)")
                client.command(f"DELETE FROM images WHERE ws = {wi} AND sha256 IN {listed}", parameters=q)
                kept = {r[0] for r in self._rows(f"SELECT sha256 FROM images FINAL WHERE sha256 IN {listed}", q)}
                orphans = sorted(set(images) - kept)
        if before is not None:
            # The made sums of the hours wholly before the cut, which no read asks for again and
            # which would otherwise stay (`made.py`); the hour holding the cut stays current or
            # is made again, as its inferences changed.
            q = Params()
            old = f"ws = {q.add(ws, 'Int32')} AND hour < toStartOfHour({q.time(before)})"
            held = {table for table, n in self._rows(" UNION ALL ".join(
                f"SELECT '{table}', count() FROM {table} WHERE {old}" for table in made.TABLES), q) if n}
            for table in (t for t in made.TABLES if t in held):  # a DELETE is a mutation even of nothing
                client.command(f"DELETE FROM {table} WHERE {old}", parameters=q)
        events = 0
        if before is not None:  # Vision Events follow the days policy (docs/vision-events.md)
            q = Params()
            old = f"ws = {q.add(ws, 'Int32')} AND ts < {q.time(before)}"
            ((events,),) = self._rows(f"SELECT count() FROM events FINAL WHERE deleted = 0 AND {old}", q)
            if events:  # every version of each, deleted ones included (no MATERIALIZED column here)
                client.command(f"DELETE FROM events WHERE {old}", parameters=q)
        return SweepResult(int(inferences), int(metadata), len(images), orphans, int(events))

    def _doomed(self, ws: int, before: datetime | None, keep_newest: int | None, p: Params) -> str:
        terms: list[str] = []
        if before is not None:
            terms.append(f"ts < {p.time(before)}")
        if keep_newest == 0:
            terms.append("true")
        elif keep_newest is not None:
            q = Params()
            rows = self._rows(
                f"SELECT ts, inference_id, image_index FROM inferences WHERE ws = {q.add(ws, 'Int32')}"
                f" ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT 1 OFFSET {int(keep_newest) - 1:d}", q)
            if rows:
                ts, iid, index = rows[0]
                terms.append(below(p.time(naive_utc(ts)), p.add(iid, "String"), p.add(index, "Int32")))
        return " OR ".join(terms)

    def usage(self, ws: int) -> dict[str, dict[str, int]]:
        sizes = {t: (int(r), int(b)) for t, r, b in self._rows(
            "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts"
            " WHERE database = currentDatabase() AND active GROUP BY table", {})}
        out: dict[str, dict[str, int]] = {}
        for table in USAGE_TABLES:
            p = Params()
            final = " FINAL" if table in ("metadata", "images") else ""
            if table == "devices":
                sql = f"SELECT uniqExact(device_id) FROM devices WHERE ws = {p.add(ws, 'Int32')}"
            elif table == "events":  # Vision Events: the live version of each
                sql = f"SELECT count() FROM events FINAL WHERE deleted = 0 AND ws = {p.add(ws, 'Int32')}"
            else:
                sql = f"SELECT count() FROM {table}{final} WHERE ws = {p.add(ws, 'Int32')}"
            ((mine,),) = self._rows(sql, p)
            rows, size = sizes.get(table, (0, 0))
            out[table] = {"rows": int(mine), "bytes": size * int(mine) // rows if rows else 0}
        p = Params()
        ((image_bytes,),) = self._rows(
            f"SELECT sum(size_bytes) FROM images FINAL WHERE ws = {p.add(ws, 'Int32')}", p)
        out["image_files"] = {"rows": out["images"]["rows"], "bytes": int(image_bytes or 0)}
        return out
