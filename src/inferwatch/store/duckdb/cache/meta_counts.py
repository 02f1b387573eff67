"""The metadata rows counted per field, value and kind, for the list of fields and their top
values (`DuckDBStore.metadata_fields`), which counted every metadata row of the workspace at
each call: 750 ms for 80 million rows.

The counts are kept of the rows written before a time `below`, for every workspace, and the rows
written since are counted at each call: the table is appended in time order, so the time bounds
of its row groups leave only the newest to read. The counts hold while no row written before
`below` has gone (replaced by a later write of its id and field, or deleted by a sweep), which
one figure tells: the table's row count, which DuckDB knows without reading, less the rows
written since, must equal the rows counted. Any other change makes them again, from one scan,
as each call made before. So every answer is the scan's.

The one assumption: a metadata row's `updated_at` is the time it was written (every write
path stamps its own time), give or take `MARGIN`, the most the clock may step back; `below` is
that far behind the clock when the counts are made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import duckdb

from inferwatch.store.duckdb.sql import Params, transaction

MARGIN = timedelta(hours=1)
# Past this many rows written since `below`, the counts are made again (one scan), so the rows
# read at each call stay few.
RECENT_AT_MOST = 1_000_000


class MetadataCounts:
    """The counts of one store. `on=False`: every call counts the rows themselves."""

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self._lock = threading.Lock()  # one call at a time reads, keeps or makes the counts
        self._below: datetime | None = None  # the counts are of the rows written before it
        self._counted = 0  # how many rows they counted

    @contextmanager
    def counted(self, con: duckdb.DuckDBPyConnection) -> Iterator[Callable[[int, Params], str]]:
        """One snapshot (a transaction on `con`) to read the counts in, made again first unless
        they hold; yields what gives the subquery of a workspace's (field_name, field_value,
        field_type, n): from the counts where they hold for the snapshot, else (a write went in
        between) from the rows. Calls take turns, so counts made again while one reads cannot
        pair its snapshot with another `below`."""
        with self._lock:
            if self.on and self._holding(con) is None:
                self._make(con)
            with transaction(con):
                below = self._holding(con) if self.on else None
                yield lambda ws, p: self._per_value(ws, p, below)

    @staticmethod
    def _per_value(ws: int, p: Params, below: datetime | None) -> str:
        if below is None:
            return (f"(SELECT field_name, field_value, field_type, count(*) AS n FROM metadata"
                    f" WHERE ws = {p.add(ws)} GROUP BY ALL)")
        return (f"(SELECT field_name, field_value, field_type, sum(n)::BIGINT AS n FROM"
                f" (SELECT field_name, field_value, field_type, n FROM metadata_value_counts WHERE ws = {p.add(ws)}"
                " UNION ALL SELECT field_name, field_value, field_type, count(*) FROM metadata"
                f" WHERE ws = {p.add(ws)} AND updated_at >= {p.add(below)} GROUP BY ALL) GROUP BY ALL)")

    def _holding(self, con: duckdb.DuckDBPyConnection) -> datetime | None:
        """The counts' `below` if they hold for `con`'s snapshot, else None."""
        if self._below is None:
            return None
        total, recent = self._rows(con, self._below)
        return self._below if total - recent == self._counted and recent <= RECENT_AT_MOST else None

    def _make(self, con: duckdb.DuckDBPyConnection) -> None:
        below = datetime.now(UTC).replace(tzinfo=None) - MARGIN
        with transaction(con):
            con.execute("DELETE FROM metadata_value_counts")
            con.execute("INSERT INTO metadata_value_counts SELECT ws, field_name, field_value, field_type, count(*)"
                        " FROM metadata WHERE updated_at < ? GROUP BY ALL", [below])
            total, recent = self._rows(con, below)
        self._below, self._counted = below, total - recent

    @staticmethod
    def _rows(con: duckdb.DuckDBPyConnection, below: datetime) -> tuple[int, int]:
        """(rows in the table, rows written at or after `below`)."""
        found = con.execute("SELECT (SELECT count(*) FROM metadata), count(*) FROM metadata WHERE updated_at >= ?",
                            [below]).fetchone()
        assert found is not None
        return int(found[0]), int(found[1])
