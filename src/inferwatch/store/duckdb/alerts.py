"""Alert rules, their state and history, retention and usage on DuckDB (migration 5).

Writes come from the writer thread only, like every other write.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState, RetentionPolicy, SweepResult
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.image_cache import ImageCache
from inferwatch.store.duckdb.sql import Params, transaction
from inferwatch.store.paging import below
from inferwatch.store.rows import USAGE_TABLES

_EVENT_COLUMNS = "ws, rule_id, fired_at, state, previous, value, notified, detail"


class AlertStore:
    """Needs the host's `_cursor()`, its per-hour sums and its image rows as last read (told
    when a sweep deletes)."""

    _caches: Caches
    _images: ImageCache

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    # -- alerts ----------------------------------------------------------------------------
    def alert_rules(self, ws: int | None) -> list[AlertRuleRecord]:
        where, params = ("WHERE ws = ?", [ws]) if ws is not None else ("", [])
        rows = self._cursor().execute(
            f"SELECT ws, rule_id, spec, created_at, updated_at FROM alert_rules {where} ORDER BY ws, rule_id",
            params).fetchall()
        return [AlertRuleRecord(*row) for row in rows]

    def put_alert_rule(self, record: AlertRuleRecord) -> None:
        self._cursor().execute(
            "INSERT INTO alert_rules VALUES (?, ?, ?, ?, ?) ON CONFLICT (ws, rule_id) DO UPDATE"
            " SET spec = excluded.spec, updated_at = excluded.updated_at",
            [record.ws, record.rule_id, record.spec, record.created_at, record.updated_at])

    def delete_alert_rule(self, ws: int, rule_id: str) -> bool:
        con = self._cursor()
        with transaction(con):
            row = con.execute("DELETE FROM alert_rules WHERE ws = ? AND rule_id = ?", [ws, rule_id]).fetchone()
            con.execute("DELETE FROM alert_state WHERE ws = ? AND rule_id = ?", [ws, rule_id])
        return bool(row and row[0])

    def alert_states(self, ws: int) -> dict[str, AlertState]:
        rows = self._cursor().execute(
            "SELECT rule_id, state, since, value, evaluated_at FROM alert_state WHERE ws = ?", [ws]).fetchall()
        return {rule_id: AlertState(*rest) for rule_id, *rest in rows}

    def set_alert_state(self, ws: int, rule_id: str, state: AlertState) -> None:
        self._cursor().execute(
            "INSERT OR REPLACE INTO alert_state VALUES (?, ?, ?, ?, ?, ?)",
            [ws, rule_id, state.state, state.since, state.value, state.evaluated_at])

    def add_alert_event(self, event: AlertEvent) -> None:
        self._cursor().execute(
            f"INSERT INTO alert_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [event.ws, event.rule_id, event.at, event.state, event.previous, event.value, event.notified,
             event.detail])

    def alert_events(self, ws: int, rule_id: str | None, limit: int) -> list[AlertEvent]:
        p = Params()
        rule = f" AND rule_id = {p.add(rule_id)}" if rule_id is not None else ""
        rows = self._cursor().execute(
            f"SELECT {_EVENT_COLUMNS} FROM alert_events WHERE ws = {p.add(ws)}{rule}"
            f" ORDER BY fired_at DESC, rule_id DESC, state DESC LIMIT {p.add(limit)}", p).fetchall()
        return [AlertEvent(*row) for row in rows]

    def notifications_since(self, ws: int, rule_id: str, since: datetime) -> int:
        row = self._cursor().execute(
            "SELECT count(*) FROM alert_events WHERE ws = ? AND rule_id = ? AND fired_at >= ? AND notified",
            [ws, rule_id, since]).fetchone()
        return int(row[0]) if row else 0

    # -- retention -------------------------------------------------------------------------
    def retention_policy(self, ws: int) -> RetentionPolicy | None:
        return self.retention_policies().get(ws)

    def set_retention_policy(self, ws: int, policy: RetentionPolicy | None) -> None:
        con = self._cursor()
        if policy is None:
            con.execute("DELETE FROM retention WHERE ws = ?", [ws])
            return
        con.execute("INSERT OR REPLACE INTO retention VALUES (?, ?, ?, ?, now())",
                    [ws, policy.max_days, policy.max_inferences, policy.image_max_days])

    def retention_policies(self) -> dict[int, RetentionPolicy]:
        rows = self._cursor().execute(
            "SELECT ws, max_days, max_inferences, image_max_days FROM retention ORDER BY ws").fetchall()
        return {ws: RetentionPolicy(*rest) for ws, *rest in rows}

    def sweep(self, ws: int, before: datetime | None, keep_newest: int | None,
              images_before: datetime | None) -> SweepResult:
        con = self._cursor()
        p = Params()
        w, doomed = p.add(ws), _doomed(con, ws, before, keep_newest, p)
        with transaction(con):
            metadata = inferences = 0
            if doomed:
                # Metadata goes with its inference, unless another image of the same id stays;
                # metadata of ids never seen (it may arrive first) is left alone.
                row = con.execute(
                    f"DELETE FROM metadata WHERE ws = {w} AND id_key IN"
                    f" (SELECT id_key FROM inferences WHERE ws = {w} AND ({doomed}))"
                    f" AND id_key NOT IN (SELECT id_key FROM inferences WHERE ws = {w} AND NOT ({doomed}))",
                    p).fetchone()
                metadata = int(row[0]) if row else 0
                row = con.execute(f"DELETE FROM inferences WHERE ws = {w} AND ({doomed})", p).fetchone()
                inferences = int(row[0]) if row else 0
            images: list[str] = []
            if images_before is not None:
                images = [r[0] for r in con.execute(
                    "DELETE FROM images WHERE ws = ? AND uploaded_at < ? RETURNING sha256",
                    [ws, images_before]).fetchall()]
            orphans = sorted(set(images) - {r[0] for r in con.execute(
                "SELECT sha256 FROM images WHERE sha256 IN (SELECT unnest(?::VARCHAR[]))", [images]).fetchall()})
            events = 0
            if before is not None:  # Vision Events follow the days policy (docs/vision-events.md)
                row = con.execute("DELETE FROM events WHERE ws = ? AND ts < ?", [ws, before]).fetchone()
                events = int(row[0]) if row else 0
        if inferences:
            self._caches.changed_unknown()
        if images:
            self._images.changed()  # after the commit: a read begun before it keeps nothing
        return SweepResult(inferences, metadata, len(images), orphans, events)

    def usage(self, ws: int) -> dict[str, dict[str, int]]:
        con = self._cursor()
        (block_size,) = con.execute("SELECT block_size FROM pragma_database_size()").fetchone() or (0,)
        out: dict[str, dict[str, int]] = {}
        for table in USAGE_TABLES:
            mine, everyone = con.execute(f"SELECT count(*) FILTER (WHERE ws = ?), count(*) FROM {table}",
                                         [ws]).fetchone() or (0, 0)
            # The table's blocks on disk (rows not yet checkpointed are in the WAL, not counted).
            (blocks,) = con.execute(
                "SELECT count(DISTINCT b) FROM (SELECT unnest(list_prepend(block_id, additional_block_ids)) AS b"
                f" FROM pragma_storage_info('{table}')) WHERE b >= 0").fetchone() or (0,)
            out[table] = {"rows": int(mine), "bytes": int(blocks * block_size * mine // everyone) if everyone else 0}
        (image_bytes,) = con.execute(
            "SELECT coalesce(sum(size_bytes), 0) FROM images WHERE ws = ?", [ws]).fetchone() or (0,)
        out["image_files"] = {"rows": out["images"]["rows"], "bytes": int(image_bytes)}
        return out


def _doomed(con: duckdb.DuckDBPyConnection, ws: int, before: datetime | None, keep_newest: int | None,
            p: Params) -> str:
    """The condition selecting the inferences a sweep deletes: older than `before`, or past the
    `keep_newest` newest in (ts, inference_id, image_index) order, the list's order."""
    terms: list[str] = []
    if before is not None:
        terms.append(f"ts < {p.add(before)}")
    if keep_newest is not None:
        row = con.execute(
            "SELECT ts, inference_id, image_index FROM inferences WHERE ws = ?"
            " ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT 1 OFFSET ?", [ws, keep_newest - 1]
        ).fetchone() if keep_newest > 0 else None
        if keep_newest == 0:
            terms.append("true")
        elif row is not None:
            terms.append(below(p.add(row[0]), p.add(row[1]), p.add(row[2])))
    return " OR ".join(terms)
