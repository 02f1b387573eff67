"""Each metadata value beside a copy of its inferences' summary columns (`metadata_facts`).

Grouping a month of inferences by a metadata field joined every inference to the field's
values: over 100 ms a pass on two cores for 4 million, and the comparison table needs more
than one pass. With the copies, the inferences that have the field are read from the copies
alone, and those without it are what the window's own figures leave once the copies' are taken
away (`meta_groups.py`): no pass joins the two tables.

The copies are a cache kept like the per-hour sums (`rollup.py`), never written by the ingest
path:

- per hour, as a second kind of per-hour cache beside the sums, with its own table of checks
  (`fact_hours`): new inferences, late images of an id and sweeps make an hour's copies stale
  the way they make its sums stale, and only the reads that need the copies re-make them;
- per inference id: a metadata write notes its ids in `metadata_changed` in its own
  transaction; a read that needs the copies first re-makes those ids' copies and clears the
  notes it saw. The notes live in the store, so writes by another process or before a crash
  are not missed.

Each re-making deletes exactly the copies it makes again (an hour's, or the noted ids'), and
only the reads write the copies, one refresh at a time under the caches' refresh lock, so they
never conflict with the writer.
"""

from __future__ import annotations

import duckdb

# The copy of inference `i` for metadata row `m`, in the table's column order. Copies are
# inserted in field and time order: a field's copies of a window then fill few row groups,
# which a read skips the others of by their min/max.
_COPY = """
SELECT i.ws, date_trunc('hour', i.ts), m.field_name, m.field_value, i.id_key, i.ts, i.model_id,
    i.device_id, i.tags, i.inference_time, i.sum_confidence, i.n_predictions, i.classes,
    i.max_confidence, i.top_class, i.key
"""

# Re-makes the copies of the given hours (after the DELETE the caches' refresh runs for each of
# a kind's tables); bound like the sums' statements: workspace, span of the hours, the hours.
REFRESH_HOURS = _COPY + """
FROM inferences i JOIN metadata m ON m.ws = i.ws AND m.id_key = i.id_key
WHERE i.ws = ? AND i.ts >= ? AND i.ts < ? AND date_trunc('hour', i.ts) IN ({hours})
ORDER BY m.field_name, i.ts
"""

_CHANGED = "SELECT DISTINCT ws, id_key FROM metadata_changed"

_REFRESH_CHANGED = (
    f"DELETE FROM metadata_facts f USING ({_CHANGED}) c WHERE f.ws = c.ws AND f.id_key = c.id_key",
    f"INSERT INTO metadata_facts {_COPY} FROM ({_CHANGED}) c"
    " JOIN metadata m ON m.ws = c.ws AND m.id_key = c.id_key"
    " JOIN inferences i ON i.ws = c.ws AND i.id_key = c.id_key ORDER BY m.field_name, i.ts",
    # Only the notes this transaction saw: a write committed since keeps its note for next time.
    "DELETE FROM metadata_changed",
)


def refresh_changed(con: duckdb.DuckDBPyConnection, at_least: int) -> None:
    """Re-makes the copies of the ids whose metadata was written since the last refresh, if
    `at_least` writes were noted."""
    con.execute("BEGIN")
    try:
        row = con.execute("SELECT count(*) FROM metadata_changed").fetchone()
        if row and row[0] >= at_least:
            for statement in _REFRESH_CHANGED:
                con.execute(statement)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
