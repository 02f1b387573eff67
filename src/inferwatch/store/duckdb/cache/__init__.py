"""The DuckDB store's per-hour caches, behind one seam: which hours are current, and making the
others so. Reads ask `Caches` whether a cache can answer; switched off, it never can, and every
read takes the plain scan of the inferences, which is the reference the cached answers are
tested against (`tests/unit/test_rollup.py`).

Two caches, both of the inferences, each kept per hour with a table of checks (the count and key
checksum of the hour's inferences it was made from):

- the sums (`sums.py`): inferences and predictions per hour, model, device and class, their
  times and confidences in the mergeable buckets of `store/sketch.py` (percentiles and medians
  of any window from its hours), the server versions; checks in `rollup_hours`;
- the metadata copies (`meta_copies.py`): each metadata value (text and number) beside a copy
  of its inference's summary columns, so grouping or filtering by a field reads no join
  (`meta_groups.py`, `meta_filter.py`), and the copies summed per hour and value, a numeric
  field's numbers too (`store/duckdb/numeric.py`), and what measured accuracy counts
  (`meta_verdicts.py`); checks in `fact_hours`. Made only by the reads that need them.

Beside them, not per hour and not behind this seam, the metadata rows counted per field and value
for the list of fields (`meta_counts.py`): kept of the rows written before a time, checked
against the table's row count at each call.

The invariants, all kept here:

- Ingest never writes a cache (its path stays as fast as it was): a commit only notes the hours
  it touched, in memory (`touched`). A read first re-makes the stale hours of its window.
- Hours are made in generations: a commit bumps the generation *after* it commits, and a
  refresh reads the generation *before* it reads the inferences, so a refresh can never mark as
  current an hour whose latest commit it did not see.
- What memory cannot know (a crash, the CLI writing while no server ran, a store opened with
  the caches off) is found by comparing each hour's count and key checksum with the inferences'
  at start-up (`check`); a sweep asks for the same comparison (`changed_unknown`).
- A metadata write notes its ids in `metadata_changed`, in its own transaction, caches on or
  off; a read that needs the copies re-makes those ids' copies first and clears the notes it
  saw. A read of the sums does so too once the notes pass `notes_at_most`, so they never pile up
  where nobody groups by metadata. In hours that are stale anyway (new events: their metadata
  and their inferences come in one commit) the notes only drop the hours' checks, which keeps
  them stale across a restart: the hour is made again whole before a read uses it.
- Each re-making deletes exactly what it makes again, in one transaction, one refresh at a
  time: only reads write the caches, so they never conflict with the writer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from inferwatch.query.filters import Filters
from inferwatch.store.duckdb.cache import meta_copies, sums
from inferwatch.store.duckdb.sql import transaction
from inferwatch.store.hours import next_hour, summed_hours, window_hours

# One hour's identity in the store: (workspace, start of the hour, naive UTC).
HourKey = tuple[int, datetime]


@dataclass(frozen=True, slots=True)
class _Kind:
    """One cache kept per hour: its table of checks, its refresh statements and their tables."""

    checks: str
    statements: tuple[str, ...]
    tables: tuple[str, ...]


_SUMS = _Kind("rollup_hours", sums.REFRESH_HOURS, sums.TABLES)
_COPIES = _Kind("fact_hours", (meta_copies.REFRESH_HOURS, *meta_copies.SUMMARIZE_HOURS),
                ("metadata_facts", *meta_copies.SUMMARY_TABLES))
_KINDS = (_SUMS, _COPIES)

# The first statement of a refresh records the count and key checksum of the hours' inferences
# in the kind's table of checks; bound like every refresh statement.
_CHECKS = """
    INSERT INTO {table}
    SELECT ws, date_trunc('hour', ts) AS hour, count(*), sum(hash(key))
    FROM inferences WHERE {where}
    GROUP BY ALL
"""

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


class Caches:
    """The per-hour caches of one store: whether a read can use them, and keeping them current.
    `on=False`: every read scans the inferences, and nothing here touches the database."""

    # Metadata writes noted since the copies were last made, past which a read of the sums
    # makes them too.
    notes_at_most = 100_000

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self._lock = threading.Lock()  # guards the fields below
        self._refresh_lock = threading.Lock()  # one refresh (or check) at a time
        self._generation = 0
        # Per kind (by its checks table): the generation of the latest change of an hour, and
        # the generation the hour was last made at.
        self._written: dict[str, dict[HourKey, int]] = {kind.checks: {} for kind in _KINDS}
        self._made: dict[str, dict[HourKey, int]] = {kind.checks: {} for kind in _KINDS}
        self._checked = False  # whether the stored caches were compared since the last unknown change
        self._unknown = 0  # counts changes the memory cannot place in hours (a sweep)

    # -- what a read may use -----------------------------------------------------------------
    def summed_hours(self, filters: Filters, bucket: timedelta | None = None) -> tuple[datetime, datetime] | None:
        """The whole hours [lo, hi) the sums answer for (`store/hours.py`), or None: scan."""
        return summed_hours(filters, bucket) if self.on else None

    def copies_serve(self, filters: Filters) -> bool:
        """Whether the metadata copies answer a group-by of a field: they hold no predictions,
        so not with confidence terms (one joined pass is quicker than their scans then)."""
        return self.on and not filters.on_confidence

    # -- keeping them current ------------------------------------------------------------------
    def touched(self, batch: pa.Table) -> None:
        """After a commit: the hours of the committed rows changed."""
        if not self.on:
            return
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

    def check(self, con: duckdb.DuckDBPyConnection) -> None:
        """Finds the hours whose stored caches no longer match the inferences (at start-up)."""
        if self.on:
            with self._refresh_lock:
                self._compare(con)

    def ready(self, con: duckdb.DuckDBPyConnection, ws: int, lo: datetime, hi: datetime) -> None:
        """Brings the sums of the workspace's hours in [lo, hi) up to date."""
        with self._refresh_lock:
            self._ready(_SUMS, con, ws, lo, hi)
            meta_copies.refresh_changed(con, self.notes_at_most, self._copies_stale)

    def ready_copies(self, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters) -> None:
        """Brings the metadata copies of the hours holding the filters' window up to date: the
        hours' own, and those of every id whose metadata was written since."""
        with self._refresh_lock:
            self._ready(_COPIES, con, ws, *window_hours(filters))
            meta_copies.refresh_changed(con, 1, self._copies_stale)

    def _ready(self, kind: _Kind, con: duckdb.DuckDBPyConnection, ws: int, lo: datetime, hi: datetime) -> None:
        if not self._checked:
            self._compare(con)
        with self._lock:
            generation = self._generation
            stale = sorted(h for w, h in self._written[kind.checks]
                           if w == ws and lo <= h < hi and self._stale(kind, (w, h)))
        if stale:
            self._refresh(con, kind, ws, stale)
            with self._lock:
                made = self._made[kind.checks]
                for hour in stale:
                    made[(ws, hour)] = generation

    def _stale(self, kind: _Kind, key: HourKey) -> bool:
        """Whether a read of `kind` would make the hour again now; with `_lock` held."""
        return self._written[kind.checks].get(key, -1) > self._made[kind.checks].get(key, -1)

    def _copies_stale(self, key: HourKey) -> bool:
        """`_stale` of the metadata copies, for a refresh of the notes (`meta_copies.refresh_changed`)."""
        with self._lock:
            return self._stale(_COPIES, key)

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
        """Re-makes the hours of one kind; the DELETE before (same transaction) drops what they
        held. The `ts` bounds let the scan skip row groups outside the hours."""
        bound = {"ws": ws, "lo": hours[0], "hi": next_hour(hours[-1]), "hours": hours}
        with transaction(con):
            for table in (kind.checks, *kind.tables):
                con.execute(f"DELETE FROM {table} WHERE ws = $ws AND hour IN (SELECT unnest($hours::TIMESTAMP[]))",
                            {"ws": ws, "hours": hours})
            for statement in (_CHECKS.format(table=kind.checks, where=sums.IN_HOURS), *kind.statements):
                con.execute(statement, bound)
