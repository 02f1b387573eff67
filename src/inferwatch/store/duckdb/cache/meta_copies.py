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

from collections.abc import Callable
from datetime import datetime

import duckdb

from inferwatch.store import sketch
from inferwatch.store.duckdb.cache import meta_verdicts
from inferwatch.store.duckdb.sql import transaction
from inferwatch.store.hours import next_hour

# The copy of inference `i` for metadata row `m`, in the table's column order. Copies are
# inserted in field and time order: a field's copies of a window then fill few row groups,
# which a read skips the others of by their min/max.
_COPY = """
SELECT i.ws, date_trunc('hour', i.ts), m.field_name, m.field_value, i.id_key, i.ts, i.model_id,
    i.device_id, i.tags, i.inference_time, i.sum_confidence, i.n_predictions, i.classes,
    i.max_confidence, i.top_class, i.key, m.field_number
"""

# Re-makes the copies of the given hours, bound like the sums' (`sums.REFRESH_HOURS`).
REFRESH_HOURS = "INSERT INTO metadata_facts" + _COPY + """
FROM inferences i JOIN metadata m ON m.ws = i.ws AND m.id_key = i.id_key
WHERE i.ws = $ws AND i.ts >= $lo AND i.ts < $hi AND date_trunc('hour', i.ts) IN (SELECT unnest($hours::TIMESTAMP[]))
ORDER BY m.field_name, i.ts
"""

# The copies of the given hours summed per hour and value, bound like `REFRESH_HOURS` and run
# after it: what a group-by of a month reads instead of its copies (`meta_groups.py`).
_OF_HOURS = ("ws = $ws AND ts >= $lo AND ts < $hi AND hour IN (SELECT unnest($hours::TIMESTAMP[]))")
SUMMARIZE_HOURS = (
    f"""
    INSERT INTO meta_hours
    SELECT ws, hour, field_name, field_value, model_id, device_id, count(*), sum(n_predictions),
        sum(sum_confidence), count(inference_time), coalesce(sum(inference_time), 0), max(ts)
    FROM metadata_facts WHERE {_OF_HOURS}
    GROUP BY ALL
    """,
    f"""
    INSERT INTO meta_time_hours
    SELECT ws, hour, field_name, field_value, model_id, device_id, {sketch.time_bucket_sql('inference_time')}, count(*)
    FROM metadata_facts WHERE {_OF_HOURS} AND inference_time IS NOT NULL
    GROUP BY ALL
    """,
    f"""
    INSERT INTO meta_class_hours
    SELECT ws, hour, field_name, field_value, model_id, device_id, c, count(*)
    FROM (SELECT ws, hour, field_name, field_value, model_id, device_id, unnest(classes) AS c
          FROM metadata_facts WHERE {_OF_HOURS})
    GROUP BY ALL
    """,
    # Each numeric field's numbers per hour, model and device (group_field NULL), and the same
    # per value of every field the hour's copies hold (group_value NULL: the inferences without
    # it), so the numeric figures grouped by a field read hours (`store/duckdb/numeric.py`).
    f"""
    INSERT INTO meta_number_hours
    WITH nums AS MATERIALIZED (
        SELECT ws, hour, key, field_name, field_number, model_id, device_id
        FROM metadata_facts WHERE {_OF_HOURS} AND field_number IS NOT NULL
    )
    SELECT ws, hour, field_name, model_id, device_id, NULL, NULL, count(*), sum(field_number),
        min(field_number), max(field_number)
    FROM nums GROUP BY ALL
    UNION ALL
    SELECT n.ws, n.hour, n.field_name, n.model_id, n.device_id, g.field_name, v.field_value, count(*),
        sum(n.field_number), min(n.field_number), max(n.field_number)
    FROM nums n
    JOIN (SELECT DISTINCT hour, field_name FROM metadata_facts WHERE {_OF_HOURS}) g ON g.hour = n.hour
    LEFT JOIN (SELECT key, field_name, field_value FROM metadata_facts WHERE {_OF_HOURS}) v
        ON v.key = n.key AND v.field_name = g.field_name
    GROUP BY ALL
    """,
    # What measured accuracy counts (`meta_verdicts.py`).
    meta_verdicts.SUMMARIZE,
    *meta_verdicts.SUMMARIZE_DAYS,
)
SUMMARY_TABLES = ("meta_hours", "meta_time_hours", "meta_class_hours", "meta_number_hours", meta_verdicts.TABLE)

_CHANGED = "SELECT DISTINCT ws, id_key FROM metadata_changed"
# The hours whose copies a refresh of the notes makes again, bound as $ws and $hours (pairs).
_HOURS = "(SELECT unnest($ws::INTEGER[]) AS ws, unnest($hours::TIMESTAMP[]) AS hour)"

_REFRESH_CHANGED = (
    f"DELETE FROM metadata_facts f USING (SELECT c.ws, c.id_key, h.hour FROM ({_CHANGED}) c JOIN {_HOURS} h"
    " ON h.ws = c.ws) d WHERE f.ws = d.ws AND f.id_key = d.id_key AND f.hour = d.hour",
    f"INSERT INTO metadata_facts {_COPY} FROM ({_CHANGED}) c"
    " JOIN metadata m ON m.ws = c.ws AND m.id_key = c.id_key"
    " JOIN inferences i ON i.ws = c.ws AND i.id_key = c.id_key"
    f" JOIN {_HOURS} h ON h.ws = i.ws AND h.hour = date_trunc('hour', i.ts) ORDER BY m.field_name, i.ts",
)


def refresh_changed(con: duckdb.DuckDBPyConnection, at_least: int,
                    stale: Callable[[tuple[int, datetime]], bool]) -> None:
    """Re-makes the copies of the ids whose metadata was written since the last refresh, if
    `at_least` writes were noted. In the hours `stale` says so of (workspace, hour) it only
    drops their checks (`fact_hours`): those hours are made again whole before any read uses
    them, and without checks a restart finds them stale too. Every commit of inferences makes
    its hours stale, so the notes of new inferences' metadata (each Vision Event writes five
    values) no longer make their copies twice. Asked only of the hours the notes are in, so a
    read with fewer than `at_least` notes pays nothing for it."""
    with transaction(con):
        row = con.execute("SELECT count(*) FROM metadata_changed").fetchone()
        if row and row[0] >= at_least:
            # The hours of those ids, whose sums are made again from their copies after.
            hours: dict[int, list[datetime]] = {}
            dropped: list[tuple[int, datetime]] = []
            for ws, hour in con.execute(
                    f"SELECT DISTINCT i.ws, date_trunc('hour', i.ts) FROM ({_CHANGED}) c"
                    " JOIN inferences i ON i.ws = c.ws AND i.id_key = c.id_key ORDER BY 1, 2").fetchall():
                if stale((ws, hour)):
                    dropped.append((ws, hour))
                else:
                    hours.setdefault(ws, []).append(hour)
            if dropped:
                con.execute(f"DELETE FROM fact_hours f USING {_HOURS} h WHERE f.ws = h.ws AND f.hour = h.hour",
                            {"ws": [w for w, _ in dropped], "hours": [h for _, h in dropped]})
            if hours:
                made = {"ws": [w for w, of_ws in hours.items() for _ in of_ws],
                        "hours": [h for of_ws in hours.values() for h in of_ws]}
                for statement in _REFRESH_CHANGED:
                    con.execute(statement, made)
            # Only the notes this transaction saw: a write committed since keeps its note for next time.
            con.execute("DELETE FROM metadata_changed")
            for ws, of_ws in hours.items():
                summarize(con, ws, of_ws)


def summarize(con: duckdb.DuckDBPyConnection, ws: int, hours: list[datetime]) -> None:
    """Makes the workspace's sums of the copies of the given hours (sorted) again, in the
    caller's transaction."""
    for table in SUMMARY_TABLES:
        con.execute(f"DELETE FROM {table} WHERE ws = $ws AND hour IN (SELECT unnest($hours::TIMESTAMP[]))",
                    {"ws": ws, "hours": hours})
    bound = {"ws": ws, "lo": hours[0], "hi": next_hour(hours[-1]), "hours": hours}
    for statement in SUMMARIZE_HOURS:
        con.execute(statement, bound)
