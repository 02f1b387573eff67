"""The metadata copies (table `metadata_facts`): each metadata value beside a copy of its
inference's summary columns.

Grouping a month of inferences by a metadata field joined every inference to the field's
values: over 100 ms a pass on two cores for 4 million, and the comparison table needs more
than one pass. With the copies, the inferences that have the field are read from the copies
alone, and those without it are what the window's own figures leave once the copies' are taken
away (`meta_groups.py`): no pass joins the two tables. They are kept per hour like the sums, and
per inference id after a metadata write (`cache/__init__.py`).
"""

from __future__ import annotations

import duckdb

from inferwatch.store.duckdb.sql import transaction

# The copy of inference `i` for metadata row `m`, in the table's column order. Copies are
# inserted in field and time order: a field's copies of a window then fill few row groups,
# which a read skips the others of by their min/max.
_COPY = """
SELECT i.ws, date_trunc('hour', i.ts), m.field_name, m.field_value, i.id_key, i.ts, i.model_id,
    i.device_id, i.tags, i.inference_time, i.sum_confidence, i.n_predictions, i.classes,
    i.max_confidence, i.top_class, i.key
"""

# Re-makes the copies of the given hours, bound like the sums' (`sums.REFRESH_HOURS`).
REFRESH_HOURS = "INSERT INTO metadata_facts" + _COPY + """
FROM inferences i JOIN metadata m ON m.ws = i.ws AND m.id_key = i.id_key
WHERE i.ws = $ws AND i.ts >= $lo AND i.ts < $hi AND date_trunc('hour', i.ts) IN (SELECT unnest($hours::TIMESTAMP[]))
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
    with transaction(con):
        row = con.execute("SELECT count(*) FROM metadata_changed").fetchone()
        if row and row[0] >= at_least:
            for statement in _REFRESH_CHANGED:
                con.execute(statement)
