"""Per-hour sums of the inferences and their predictions, so a chart of weeks reads thousands of
rows, not millions.

Counting detections per class unnests every stored prediction: about 350 ms for 30 days of a
5-million-inference store, nearly all of it reading the nested predictions. The same figures
summed per hour (and model, device, class) answer in a few milliseconds, and the partial hours
at a window's two ends are added from the inferences themselves, so an answer is the same as
the full scan's.

The sums are a cache of the inferences, refreshed when read, never written on the ingest path
(which stays as fast as it was): a commit only notes which hours it touched, in memory. A
read first re-sums the hours of its window that changed since they were last summed. What the
memory cannot know (a crash, a sweep, the CLI writing while no server ran) is found by
comparing each hour's count and key checksum with the inferences' at start-up, or after a
sweep: a cheap pass over two columns, against summing the predictions again.

Hours are summed in generations: a commit bumps the generation *after* it commits, and a
refresh reads the generation *before* it reads the inferences, so a refresh can never mark as
current an hour whose latest commit it did not see.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from inferwatch.query.filters import Filters
from inferwatch.store.duckdb import facts
from inferwatch.store.duckdb.sql import _marks, where

HOUR = timedelta(hours=1)
# The confidence histogram the sums keep: the dashboard's; other bin counts read the inferences.
BINS = 20

# One hour's identity in the store: (workspace, start of the hour, naive UTC).
HourKey = tuple[int, datetime]

_HOURS = "SELECT unnest(?::TIMESTAMP[])"

# Each refresh statement re-makes the given hours of one workspace from the inferences; the
# DELETE before it (same transaction) drops what they held. `ts` bounds let the scan skip row
# groups outside the hours. The first statement of a kind records the count and key checksum of
# the hours' inferences it was made from, in the kind's table of checks.
_CHECKS = """
    INSERT INTO {table}
    SELECT ws, date_trunc('hour', ts) AS hour, count(*), sum(hash(key))
    FROM inferences WHERE ws = ? AND ts >= ? AND ts < ? AND date_trunc('hour', ts) IN ({{hours}})
    GROUP BY ALL
"""


@dataclass(frozen=True, slots=True)
class _Kind:
    """One cache kept per hour: its table of checks, its refresh statements and their tables."""

    checks: str
    statements: tuple[str, ...]
    tables: tuple[str, ...]


_SUMS = _Kind("rollup_hours", (
    """
    INSERT INTO class_hours
    SELECT ws, hour, model_id, device_id, p.class, count(*), count(DISTINCT key),
        count(p.confidence), coalesce(sum(p.confidence), 0),
        count(inference_time), coalesce(sum(inference_time), 0)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, key, inference_time,
              unnest(predictions) AS p
          FROM inferences WHERE ws = ? AND ts >= ? AND ts < ? AND date_trunc('hour', ts) IN ({hours}))
    GROUP BY ALL
    """,
    """
    INSERT INTO inference_hours
    SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, count(*), sum(n_predictions),
        sum(sum_confidence), count(inference_time), coalesce(sum(inference_time), 0)
    FROM inferences WHERE ws = ? AND ts >= ? AND ts < ? AND date_trunc('hour', ts) IN ({hours})
    GROUP BY ALL
    """,
    f"""
    INSERT INTO class_bins
    SELECT ws, hour, model_id, p.class, least(floor(p.confidence * {BINS})::INTEGER, {BINS - 1}),
        count(*), sum(p.confidence)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, unnest(predictions) AS p
          FROM inferences WHERE ws = ? AND ts >= ? AND ts < ? AND date_trunc('hour', ts) IN ({{hours}}))
    GROUP BY ALL
    """,
), ("inference_hours", "class_hours", "class_bins"))
# Not sums: the hours' copies of the inferences beside their metadata (`facts.py`), made only
# for the reads that group by a metadata field, so other reads never pay for the join.
_FACTS = _Kind("fact_hours", ("INSERT INTO metadata_facts" + facts.REFRESH_HOURS,), ("metadata_facts",))
_KINDS = (_SUMS, _FACTS)

# Per kind, the hours whose count or key checksum differs between the inferences and the
# kind's checks (either side missing counts as different).
_STALE = (
    "WITH r AS MATERIALIZED (SELECT ws, date_trunc('hour', ts) AS hour, count(*) AS n,"
    " sum(hash(key)) AS checksum FROM inferences GROUP BY ALL) "
    + " UNION ALL ".join(
        f"SELECT '{kind.checks}', coalesce(r.ws, s.ws), coalesce(r.hour, s.hour) FROM r"
        f" FULL OUTER JOIN {kind.checks} s ON r.ws = s.ws AND r.hour = s.hour"
        " WHERE r.n IS DISTINCT FROM s.n OR r.checksum IS DISTINCT FROM s.checksum" for kind in _KINDS)
)

# Metadata writes noted since the copies were last made, past which any read with the sums
# makes them (the notes would otherwise pile up where nobody groups by metadata).
_CHANGED_AT_MOST = 100_000


def _floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _next_hour(hour: datetime) -> datetime:
    """The hour after, or the last instant there is for the last hour of year 9999."""
    try:
        return hour + HOUR
    except OverflowError:
        return datetime.max


def _ceil_hour(value: datetime) -> datetime:
    floor = _floor_hour(value)
    return floor if floor == value else _next_hour(floor)


def window_hours(filters: Filters) -> tuple[datetime, datetime]:
    """The hours [lo, hi) (naive UTC) that hold the filters' window, partial ones included."""
    lo = _floor_hour(filters.start.replace(tzinfo=None)) if filters.start else datetime.min
    hi = _ceil_hour(filters.end.replace(tzinfo=None)) if filters.end else datetime.max
    return lo, hi


def summed_hours(filters: Filters, bucket: timedelta | None = None) -> tuple[datetime, datetime] | None:
    """The whole hours [lo, hi) (naive UTC) of the filters' window the sums can answer for, or
    None. The sums know model, device and class, not tags, metadata or a single prediction's
    confidence; a time bucket must be made of whole hours."""
    if filters.tags or filters.meta or filters.min_confidence is not None or filters.max_confidence is not None:
        return None
    if filters.start is None or filters.end is None:
        return None
    if bucket is not None and (bucket < HOUR or bucket % HOUR):
        return None
    lo, hi = _ceil_hour(filters.start.replace(tzinfo=None)), _floor_hour(filters.end.replace(tzinfo=None))
    return (lo, hi) if lo < hi else None


class Rollup:
    """Which hours of the per-hour caches (the sums; the metadata copies) are current, and
    bringing the others up to date."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the fields below
        self._refresh_lock = threading.Lock()  # one refresh (or check) at a time
        self._generation = 0
        # Per kind (by its checks table): the generation of the latest change of an hour, and
        # the generation the hour was last made at.
        self._written: dict[str, dict[HourKey, int]] = {kind.checks: {} for kind in _KINDS}
        self._made: dict[str, dict[HourKey, int]] = {kind.checks: {} for kind in _KINDS}
        self._checked = False  # whether the stored caches were compared since the last unknown change
        self._unknown = 0  # counts changes the memory cannot place in hours (a sweep)

    def touched(self, batch: pa.Table) -> None:
        """After a commit: the hours of the committed rows changed."""
        # On the writer thread, holding the GIL: per workspace (nearly always one), the distinct
        # hours, in a few tens of microseconds for thousands of rows.
        keys: list[HourKey] = []
        spaces = pc.unique(batch["ws"]).to_pylist()
        for ws in spaces:
            ts = batch["ts"] if len(spaces) == 1 else pc.filter(batch["ts"], pc.equal(batch["ws"], ws))
            keys += [(ws, hour) for hour in pc.unique(pc.floor_temporal(ts, unit="hour")).to_pylist()]
        with self._lock:
            self._generation += 1
            for written in self._written.values():
                for key in keys:
                    written[key] = self._generation

    def changed_unknown(self) -> None:
        """After a change of rows in hours not noted (a sweep): compare every hour again."""
        with self._lock:
            self._generation += 1
            self._unknown += 1
            self._checked = False

    def ready(self, con: duckdb.DuckDBPyConnection, ws: int, lo: datetime, hi: datetime) -> None:
        """Brings the sums of the workspace's hours in [lo, hi) up to date."""
        with self._refresh_lock:
            self._ready(_SUMS, con, ws, lo, hi)
            facts.refresh_changed(con, at_least=_CHANGED_AT_MOST)

    def ready_facts(self, con: duckdb.DuckDBPyConnection, ws: int, lo: datetime, hi: datetime) -> None:
        """Brings the metadata copies (`facts.py`) of the workspace's hours in [lo, hi) up to
        date: the hours' own, and those of every id whose metadata was written since."""
        with self._refresh_lock:
            self._ready(_FACTS, con, ws, lo, hi)
            facts.refresh_changed(con, at_least=1)

    def check(self, con: duckdb.DuckDBPyConnection) -> None:
        """Finds the hours whose stored caches no longer match the inferences (at start-up)."""
        with self._refresh_lock:
            self._compare(con)

    def _ready(self, kind: _Kind, con: duckdb.DuckDBPyConnection, ws: int, lo: datetime, hi: datetime) -> None:
        if not self._checked:
            self._compare(con)
        with self._lock:
            generation = self._generation
            made = self._made[kind.checks]
            stale = sorted(h for (w, h), g in self._written[kind.checks].items()
                           if w == ws and lo <= h < hi and g > made.get((w, h), -1))
        if stale:
            self._refresh(con, kind, ws, stale)
            with self._lock:
                for hour in stale:
                    made[(ws, hour)] = generation

    def _compare(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            unknown = self._unknown
            self._generation += 1
            generation = self._generation
        stale = con.execute(_STALE).fetchall()
        with self._lock:
            for checks, ws, hour in stale:
                self._written[checks][(ws, hour)] = generation
            self._checked = unknown == self._unknown

    def _refresh(self, con: duckdb.DuckDBPyConnection, kind: _Kind, ws: int, hours: list[datetime]) -> None:
        span = [hours[0], _next_hour(hours[-1])]
        con.execute("BEGIN")
        try:
            for table in (kind.checks, *kind.tables):
                con.execute(f"DELETE FROM {table} WHERE ws = ? AND hour IN ({_HOURS})", [ws, hours])
            for statement in (_CHECKS.format(table=kind.checks), *kind.statements):
                con.execute(statement.format(hours=_HOURS), [ws, *span, hours])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def edge_where(ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> tuple[str, list[Any]]:
    """The terms selecting the filters' inferences (alias `i`) outside the summed hours: those of
    the window's partial first and last hours, which the sums leave to the rows."""
    clause, params = where(ws, filters, "i")
    return f"{clause} AND (i.ts < ? OR i.ts >= ?)", [*params, *hours]


def sums_where(ws: int, filters: Filters, lo: datetime, hi: datetime, *, device: bool = True) -> tuple[str, list[Any]]:
    """The terms selecting a summed table's rows of [lo, hi) in the filters."""
    terms = ["ws = ?", "hour >= ?", "hour < ?"]
    params: list[Any] = [ws, lo, hi]
    for column, values in (("model_id", filters.model_ids), ("device_id", filters.device_ids if device else ()),
                           ("class", filters.classes)):
        if values:
            terms.append(f"{column} IN ({_marks(len(values))})")
            params.extend(values)
    return " AND ".join(terms), params


def rows_per_class(ws: int, filters: Filters, hours: tuple[datetime, datetime], by: str = "NULL"
                   ) -> tuple[str, list[Any]]:
    """A query of (`by` column, class, inferences holding it) in filters without prediction
    terms: the sums' whole hours, and each partial hour's rows' distinct classes (which leave
    out predictions without a class, as the sums here do)."""
    lo, hi = hours
    held, params = sums_where(ws, filters, lo, hi)
    edges, edge_params = edge_where(ws, filters, hours)
    return (
        f"SELECT g, c, sum(n) FROM (SELECT {by} AS g, class AS c, n_inferences AS n FROM class_hours WHERE {held}"
        f" AND class IS NOT NULL UNION ALL SELECT {by}, unnest(i.classes), 1 FROM inferences i"
        f" WHERE {edges}) GROUP BY ALL",
        [*params, *edge_params],
    )
