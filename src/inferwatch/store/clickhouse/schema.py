"""The ClickHouse schema, as numbered migrations applied in order at start-up.

As with DuckDB, a migration is never edited once released: a change is a new entry at the end,
and `schema_version` records each applied version. A migration is a list of statements because
ClickHouse runs one statement per request.

Layout, and why:
- `inferences` is ordered by (ws, model_id, ts, ...) so a workspace's slice of time for a model is
  one contiguous range, partitioned by month so a time filter skips whole parts, and uses
  `LowCardinality` for the few-valued strings (model, task, device, class, source, tags).
  Predictions are nested (`Array(Tuple)`), as in DuckDB: an inference and its predictions are one
  row, written or skipped together, and each tuple element is still stored as its own column
  (`predictions.class` reads only the classes). Derived columns are `MATERIALIZED`: the engine
  computes them from the predictions while inserting, as DuckDB's INSERT ... SELECT does.
- Identity. An inference is (ws, inference_id, image_index). `identity_keys` (migration 5; it
  replaced migration 1's `inference_keys`) holds exactly those, ordered by them, in small granules,
  filled by a materialized view in the same insert; the writer looks up a batch's
  identities there (a primary-key lookup) and inserts only the new ones, so a re-sent item is
  skipped whole and counted once. The inference table itself is a `ReplacingMergeTree` on its
  sort key, which ends with the identity: should two replicas race to insert the same inference
  with the same time, merges collapse the pair.
- `metadata` is a `ReplacingMergeTree(updated_at)` on (ws, inference_id, field_name): the later
  write wins. Each row carries its inference's time, and a projection orders the rows by field
  and time (migration 13): a read of a window takes the latest write of each of its inferences'
  fields from there (`argMax`), any other read says `FINAL`; both are right before merges happen.
- Device facts are upserts of a special kind (first/last seen span every report; each fact is the
  latest report's that carried it). Reports go into a `Null` table; a materialized view folds them
  into an `AggregatingMergeTree` of min/max and argMaxIf states, merged again at read time.
- `workspaces` and `images` are small `ReplacingMergeTree`s read with `FINAL`.
- The per-hour summaries are an aggregate projection of `inferences` (migration 12), which the
  engine keeps in each part beside its rows and uses for a read that groups as it does.
"""

from __future__ import annotations

from inferwatch.store import sketch

UTC_TIME = "DateTime64(6, 'UTC')"

PREDICTION = (
    "Tuple(class LowCardinality(String), class_id Nullable(Int32), confidence Nullable(Float64),"
    " x Nullable(Float64), y Nullable(Float64), width Nullable(Float64), height Nullable(Float64),"
    " detection_id Nullable(String), points Nullable(String), keypoints Nullable(String))"
)

# A device fact: the value of the latest report that carried one.
_FACT = f"AggregateFunction(argMaxIf, Nullable(String), {UTC_TIME}, UInt8)"


def _expiry(column: str) -> str:
    """A TTL: the row goes `max_days` after `column` where its workspace has a days policy."""
    days = "dictGetOrDefault('{db}.retention_days', 'max_days', ws, 0)"
    return f"toDateTime({column}) + toIntervalDay({days}) WHERE {days} > 0"


# The tables whose rows a days policy expires.
TTL_TABLES = ("inferences", "identity_keys", "metadata")

# A TTL reading a dictionary is "suspicious" to ClickHouse (its answer can change); here that is
# the point. Stored parts are not rewritten at once (`materialize_ttl_after_modify`).
_TTL_SETTINGS = "SETTINGS allow_suspicious_ttl_expressions = 1, materialize_ttl_after_modify = 0"

# The per-hour summaries (migration 12): counts, sums and the latest time per hour, model, device
# and task, and the inference times' buckets (`store/sketch.py`) as a map of bucket to count, so
# one projection holds them all (each projection is a part of its own at every insert). A read
# that groups exactly so, with these same expressions, is answered from it.
TIME_BUCKETS = (
    f"sumMap(if(inference_time IS NULL, map(), map(assumeNotNull({sketch.time_bucket_sql('inference_time')}),"
    " toUInt64(1))))"
)
HOUR_SUMS = (
    "hour_sums (SELECT ws, model_id, device_id, task, toStartOfHour(ts), count(), sum(n_predictions),"
    f" sum(sum_confidence), count(inference_time), sum(inference_time), max(ts), {TIME_BUCKETS}"
    " GROUP BY ws, model_id, device_id, task, toStartOfHour(ts))"
)

# The time a metadata row carries when its inference's is not one known time (migration 13): the
# inference is not stored yet, or its images were sent at different times. A read of a window
# takes such rows whatever the window (`sql.metadata_rows`).
NO_TIME = "toDateTime64(0, 6, 'UTC')"
# Gives the metadata rows still at NO_TIME the time of their inference where it is now one known
# time: a newer copy of each row with the same write time, which the engine keeps over the older
# (it keeps the last inserted of equal versions). Run by migration 13 and after a copy from
# DuckDB; run again, it finds nothing left to do. An identity stored before migration 6 has no
# time (its default lies in 2106) and keeps its metadata at NO_TIME.
METADATA_TIMES = f"""
INSERT INTO metadata SELECT m.* REPLACE (k.t AS ts) FROM metadata AS m FINAL
INNER JOIN (
    SELECT ws, inference_id, min(ts) AS t FROM identity_keys GROUP BY ws, inference_id
    HAVING min(ts) = max(ts) AND t < toDateTime64('2106-01-01 00:00:00', 6, 'UTC')
) AS k ON m.ws = k.ws AND m.inference_id = k.inference_id
WHERE m.ts = {NO_TIME}
"""

# Statements name the store's database as `{db}` and the dictionary source's credentials as
# `{auth}`: `ClickHouseStore.migrate` fills both in.
MIGRATIONS: list[list[str]] = [
    # 1: everything the DuckDB store's migrations 1 and 2 hold.
    [
        f"""
        CREATE TABLE IF NOT EXISTS workspaces (
            id Int32,
            slug String,
            key_hash String,
            created_at {UTC_TIME},
            updated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY id
        """,
        f"""
        CREATE TABLE IF NOT EXISTS inferences (
            ws Int32,
            inference_id String,
            image_index Int32,
            ts {UTC_TIME},
            received_at {UTC_TIME},
            model_id LowCardinality(String),
            task LowCardinality(String),
            device_id LowCardinality(Nullable(String)),
            tags Array(LowCardinality(String)),
            source LowCardinality(String),
            inference_time Nullable(Float64),
            image_width Nullable(Int32),
            image_height Nullable(Int32),
            extra Nullable(String),
            predictions Array({PREDICTION}),
            n_predictions Int32 MATERIALIZED toInt32(length(predictions)),
            max_confidence Nullable(Float64) MATERIALIZED
                if(empty(predictions), NULL, arrayMax(p -> p.confidence, predictions)),
            sum_confidence Float64 MATERIALIZED arraySum(p -> ifNull(p.confidence, 0), predictions),
            classes Array(LowCardinality(String)) MATERIALIZED arraySort(arrayDistinct(predictions.class)),
            INDEX device_idx device_id TYPE set(1000) GRANULARITY 4,
            INDEX tags_idx tags TYPE bloom_filter(0.01) GRANULARITY 4,
            INDEX classes_idx classes TYPE bloom_filter(0.01) GRANULARITY 4,
            INDEX inference_id_idx inference_id TYPE bloom_filter(0.01) GRANULARITY 4
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (ws, model_id, ts, inference_id, image_index)
        """,
        """
        CREATE TABLE IF NOT EXISTS inference_keys (
            ws Int32,
            inference_id String,
            image_index Int32
        ) ENGINE = ReplacingMergeTree ORDER BY (ws, inference_id, image_index)
        """,
        """
        CREATE MATERIALIZED VIEW IF NOT EXISTS inference_keys_mv TO inference_keys
        AS SELECT ws, inference_id, image_index FROM inferences
        """,
        f"""
        CREATE TABLE IF NOT EXISTS metadata (
            ws Int32,
            inference_id String,
            field_name LowCardinality(String),
            field_value String,
            updated_at {UTC_TIME},
            INDEX value_idx field_value TYPE bloom_filter(0.01) GRANULARITY 4
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (ws, inference_id, field_name)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS device_reports (
            ws Int32,
            device_id String,
            first_seen {UTC_TIME},
            last_seen {UTC_TIME},
            server_id Nullable(String),
            server_version Nullable(String),
            hostname Nullable(String),
            platform Nullable(String),
            tags Array(String),
            tags_reported UInt8
        ) ENGINE = Null
        """,
        f"""
        CREATE TABLE IF NOT EXISTS devices (
            ws Int32,
            device_id String,
            first_seen SimpleAggregateFunction(min, {UTC_TIME}),
            last_seen SimpleAggregateFunction(max, {UTC_TIME}),
            server_id {_FACT},
            server_version {_FACT},
            hostname {_FACT},
            platform {_FACT},
            tags AggregateFunction(argMaxIf, Array(String), {UTC_TIME}, UInt8)
        ) ENGINE = AggregatingMergeTree ORDER BY (ws, device_id)
        """,
        """
        CREATE MATERIALIZED VIEW IF NOT EXISTS devices_mv TO devices AS
        SELECT r.ws AS ws, r.device_id AS device_id, min(r.first_seen) AS first_seen, max(r.last_seen) AS last_seen,
            argMaxIfState(r.server_id, r.last_seen, toUInt8(r.server_id IS NOT NULL)) AS server_id,
            argMaxIfState(r.server_version, r.last_seen, toUInt8(r.server_version IS NOT NULL)) AS server_version,
            argMaxIfState(r.hostname, r.last_seen, toUInt8(r.hostname IS NOT NULL)) AS hostname,
            argMaxIfState(r.platform, r.last_seen, toUInt8(r.platform IS NOT NULL)) AS platform,
            argMaxIfState(r.tags, r.last_seen, r.tags_reported) AS tags
        FROM device_reports AS r GROUP BY r.ws, r.device_id
        """,
        f"""
        CREATE TABLE IF NOT EXISTS images (
            ws Int32,
            sha256 String,
            inference_id Nullable(String),
            content_type LowCardinality(String),
            width Nullable(Int32),
            height Nullable(Int32),
            size_bytes Int64,
            name Nullable(String),
            project Nullable(String),
            batch Nullable(String),
            tags Array(String),
            uploaded_at {UTC_TIME},
            version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY (ws, sha256)
        """,
    ],
    # 2: how far `inferwatch migrate` got copying a store in, so a copy cut short goes on from
    # there: per source and step, the last row copied in the source's (ts, ws, inference_id,
    # image_index) order.
    [
        f"""
        CREATE TABLE IF NOT EXISTS import_progress (
            source String,
            step LowCardinality(String),
            ts {UTC_TIME},
            ws Int32,
            inference_id String,
            image_index Int32,
            copied UInt64,
            updated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (source, step)
        """,
    ],
    # 3: settings a workspace keeps per model (its ground truth, as on DuckDB's migration 4); the
    # latest write wins, read with FINAL.
    [
        f"""
        CREATE TABLE IF NOT EXISTS model_settings (
            ws Int32,
            model_id String,
            ground_truth Nullable(String),
            updated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (ws, model_id)
        """,
    ],
    # 4: alerts and retention (DuckDB's migration 5). Rules, states and policies are the latest
    # write per key (read with FINAL; a deleted rule is a row with `deleted = 1`); events are
    # appended. With several replicas only one evaluates (docs/architecture.md), so state rows
    # have one writer.
    [
        f"""
        CREATE TABLE IF NOT EXISTS alert_rules (
            ws Int32,
            rule_id String,
            spec String,
            deleted UInt8,
            created_at {UTC_TIME},
            updated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (ws, rule_id)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS alert_state (
            ws Int32,
            rule_id String,
            state LowCardinality(String),
            since {UTC_TIME},
            value Nullable(Float64),
            evaluated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(evaluated_at) ORDER BY (ws, rule_id)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS alert_events (
            ws Int32,
            rule_id String,
            fired_at {UTC_TIME},
            state LowCardinality(String),
            previous LowCardinality(String),
            value Nullable(Float64),
            notified UInt8,
            detail String
        ) ENGINE = MergeTree ORDER BY (ws, rule_id, fired_at)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS retention (
            ws Int32,
            max_days Nullable(Int32),
            max_inferences Nullable(Int64),
            image_max_days Nullable(Int32),
            updated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY ws
        """,
    ],
    # 5: the identities again, in granules of 256 rows instead of 8192. The writer looks up a
    # batch's ids, which are random: each one touches a granule of its own, so with big granules
    # a 5,000-row batch read every granule of a 5M-row table (605 of 611), and the check grew with
    # the table; with small ones it reads about a batch's worth of granules (2,360 of 19,532
    # there), whatever the table's size, for an index 32 times larger (16 MB per 100M ids).
    # The view moves to the new table before the stored ids are copied over, so none is missed.
    [
        """
        CREATE TABLE IF NOT EXISTS identity_keys (
            ws Int32,
            inference_id String,
            image_index Int32
        ) ENGINE = ReplacingMergeTree ORDER BY (ws, inference_id, image_index)
        SETTINGS index_granularity = 256
        """,
        """
        CREATE MATERIALIZED VIEW IF NOT EXISTS identity_keys_mv TO identity_keys
        AS SELECT ws, inference_id, image_index FROM inferences
        """,
        "DROP VIEW IF EXISTS inference_keys_mv",
        "INSERT INTO identity_keys SELECT ws, inference_id, image_index FROM inference_keys",
        "DROP TABLE IF EXISTS inference_keys",
    ],
    # 6: the days policy as table TTLs, so the engine itself drops a workspace's expired rows as
    # it merges, on every shard and replica, sweeper or not. A policy is per workspace, and a TTL
    # cannot read a table, but it can read a dictionary: `retention_days` is the policies' days
    # (reloaded within a minute, and at once when a policy is set). Inferences expire by their
    # time, their identities with them (the view now copies the time; identities stored before
    # this migration never expire by TTL, a sweep removes them with their inferences), metadata
    # by its last write, which comes after its inference ran. Adding a TTL does not rewrite the
    # stored parts: they take it as they merge. The count policy and images stay with the sweep
    # (a TTL counts no rows and deletes no files).
    [
        """
        CREATE DICTIONARY IF NOT EXISTS retention_days (ws Int32, max_days Int32) PRIMARY KEY ws
        SOURCE(CLICKHOUSE(QUERY 'SELECT ws, max_days FROM {db}.retention FINAL WHERE max_days IS NOT NULL'{auth}))
        LIFETIME(MIN 30 MAX 60) LAYOUT(HASHED())
        """,
        f"ALTER TABLE identity_keys ADD COLUMN IF NOT EXISTS ts {UTC_TIME}"
        " DEFAULT toDateTime64('2106-01-01 00:00:00', 6, 'UTC')",
        "ALTER TABLE identity_keys_mv MODIFY QUERY SELECT ws, inference_id, image_index, ts FROM inferences",
        *(f"ALTER TABLE {table} MODIFY SETTING materialize_ttl_recalculate_only = 1"
          for table in TTL_TABLES),
        f"ALTER TABLE inferences MODIFY TTL {_expiry('ts')} {_TTL_SETTINGS}",
        f"ALTER TABLE identity_keys MODIFY TTL {_expiry('ts')} {_TTL_SETTINGS}",
        f"ALTER TABLE metadata MODIFY TTL {_expiry('updated_at')} {_TTL_SETTINGS}",
    ],
    # 7: many named keys per workspace with their scopes (`store/clickhouse/keys.py`); the one key
    # a workspace had becomes its key `default` with every scope (a rerun inserts the same row,
    # which the engine folds). Last use in a table of its own, so a replica noting a use never
    # writes back a key another replica just revoked. And the audit trail.
    [
        f"""
        CREATE TABLE IF NOT EXISTS api_keys (
            ws Int32,
            key_id String,
            name String,
            key_hash String,
            scopes Array(String),
            created_at {UTC_TIME},
            expires_at Nullable({UTC_TIME}),
            revoked_at Nullable({UTC_TIME}),
            expiry_noted UInt8,
            updated_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (ws, key_id)
        """,
        """
        INSERT INTO api_keys SELECT id, substring(lower(hex(MD5(key_hash))), 1, 12), 'default', key_hash,
            ['ingest', 'read', 'manage'], created_at, NULL, NULL, 0, created_at FROM workspaces FINAL
        """,
        f"""
        CREATE TABLE IF NOT EXISTS api_key_use (
            ws Int32,
            key_id String,
            last_used_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(last_used_at) ORDER BY (ws, key_id)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS audit_log (
            ws Int32,
            recorded_at {UTC_TIME},
            actor String,
            action String,
            target String,
            detail String
        ) ENGINE = MergeTree ORDER BY (ws, recorded_at)
        """,
    ],
    # 8: typed metadata, as DuckDB's migration 11: each value's kind and the number it reads as.
    # Stored values stay strings; the number's default is the rule of `ingest/metavalues.py` (its
    # pattern as released), which the engine computes for the stored parts as it reads them, so
    # no part is rewritten. New rows bring both columns. (An ALTER of a table whose TTL reads the
    # retention dictionary must allow that TTL again.)
    [
        "ALTER TABLE metadata ADD COLUMN IF NOT EXISTS field_type LowCardinality(String) DEFAULT 'string'"
        " SETTINGS allow_suspicious_ttl_expressions = 1",
        "ALTER TABLE metadata ADD COLUMN IF NOT EXISTS field_number Nullable(Float64) DEFAULT"
        " if(match(field_value, '^-?(0|[1-9][0-9]*)(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$')"
        " AND isFinite(toFloat64OrZero(field_value)), toFloat64OrNull(field_value), NULL)"
        " SETTINGS allow_suspicious_ttl_expressions = 1",
    ],
    # 9: Vision Events, as DuckDB's migration 12 (`store/clickhouse/events.py`). Both tables are
    # ReplacingMergeTrees read with FINAL: a use case renamed or archived, an event sent again or
    # deleted, is a newer row (`version`, the writer's clock in ns) replacing the older.
    [
        f"""
        CREATE TABLE IF NOT EXISTS use_cases (
            ws Int32,
            id String,
            name String,
            status LowCardinality(String),
            created_at {UTC_TIME},
            updated_at {UTC_TIME},
            version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY (ws, id)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS events (
            ws Int32,
            event_id String,
            use_case_id String,
            event_type LowCardinality(String),
            ts {UTC_TIME},
            received_at {UTC_TIME},
            device_id Nullable(String),
            stream_id Nullable(String),
            workflow_id Nullable(String),
            external_id Nullable(String),
            n_images Int32,
            meta_types Array(String),
            image_meta_types Array(String),
            body String,
            deleted UInt8,
            version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY (ws, event_id)
        """,
    ],
    # 10: each event's ingestion warnings, as DuckDB's migration 14; none for the events stored
    # before (the default, which the engine supplies for the stored parts as it reads them).
    [
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS warnings Array(String) DEFAULT []",
    ],
    # 11: an event's custom metadata and event-data fields on its own row too, as DuckDB's
    # migration 15: each field's text and number (`EventRows.field_*`), so the Vision Events query
    # reads the event rows alone, as DuckDB's does. Stored events get theirs from the metadata rows
    # they wrote, as a newer version of each live row (run again, it writes a newer one still).
    [
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS field_values Map(String, String)",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS field_numbers Map(String, Float64)",
        """
        INSERT INTO events SELECT e.* REPLACE (m.texts AS field_values, m.numbers AS field_numbers,
            e.version + 1 AS version)
        FROM events AS e FINAL
        INNER JOIN (
            SELECT ws, inference_id, mapFromArrays(groupArray(field_name), groupArray(field_value)) AS texts,
                mapFromArrays(groupArrayIf(field_name, field_number IS NOT NULL),
                              groupArrayIf(assumeNotNull(field_number), field_number IS NOT NULL)) AS numbers
            FROM metadata FINAL WHERE position(field_name, '.') = 0 OR startsWith(field_name, 've.data.')
            GROUP BY ws, inference_id
        ) AS m ON e.ws = m.ws AND e.event_id = m.inference_id
        WHERE e.deleted = 0
        """,
    ],
    # 12: the per-hour summaries, as ClickHouse keeps them: an aggregate projection of `inferences`
    # (`store/clickhouse/summaries.py`). Each part holds its rows summed per hour beside them, made
    # as the part is written and made again whenever a merge, a TTL or a mutation rewrites it, so
    # a summary never differs from its rows (a materialized view would miss every delete). A
    # merge that drops a re-sent row rebuilds them too (`deduplicate_merge_projection_mode`).
    [
        f"ALTER TABLE inferences MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild' {_TTL_SETTINGS}",
        f"ALTER TABLE inferences ADD PROJECTION IF NOT EXISTS {HOUR_SUMS} {_TTL_SETTINGS}",
        f"ALTER TABLE inferences MATERIALIZE PROJECTION hour_sums {_TTL_SETTINGS}, mutations_sync = 1",
    ],
    # 13: metadata by field and time. The table is ordered by inference id (a row is replaced by
    # its id and field), so a field's values for one day were read from the whole table, with
    # FINAL. Each row now carries its inference's time (`ts`; NO_TIME where that is not one known
    # time), and a projection orders a copy by field and time, so a read of a window takes only
    # the rows of that window's inferences (`sql.metadata_rows`). The projection is rebuilt by
    # merges that drop replaced rows and by the deletes of sweeps and events, like `hour_sums`.
    # The merge of the old rows with their timed copies rewrites the table once.
    [
        f"ALTER TABLE metadata ADD COLUMN IF NOT EXISTS ts {UTC_TIME} DEFAULT {NO_TIME} {_TTL_SETTINGS}",
        "ALTER TABLE metadata MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild',"
        f" lightweight_mutation_projection_mode = 'rebuild' {_TTL_SETTINGS}",
        METADATA_TIMES,
        "OPTIMIZE TABLE metadata FINAL",
        "ALTER TABLE metadata ADD PROJECTION IF NOT EXISTS by_field (SELECT * ORDER BY ws, field_name, ts)"
        f" {_TTL_SETTINGS}",
        f"ALTER TABLE metadata MATERIALIZE PROJECTION by_field {_TTL_SETTINGS}, mutations_sync = 1",
    ],
    # 14: the per-hour sums per class, which reads make and ingest never writes
    # (`store/clickhouse/class_sums.py`): predictions and inferences holding each class per hour,
    # model, device, class and server version; the predictions' confidence bins per hour, model and
    # class, as a map of bin to count (a month's maps add up three times quicker than the same bins
    # as rows, docs/performance.md); and
    # per made hour the projection's figures it was made from, which tell a changed hour.
    [
        f"""
        CREATE TABLE IF NOT EXISTS class_hours (
            ws Int32,
            hour DateTime('UTC'),
            model_id LowCardinality(String),
            device_id LowCardinality(Nullable(String)),
            class LowCardinality(String),
            version LowCardinality(Nullable(String)),
            n UInt64,
            n_inferences UInt64,
            n_confidence UInt64,
            confidence_sum Float64,
            n_timed UInt64,
            time_sum Float64,
            made_at {UTC_TIME}
        ) ENGINE = MergeTree ORDER BY (ws, hour, model_id, class)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS class_bins (
            ws Int32,
            hour DateTime('UTC'),
            model_id LowCardinality(String),
            class LowCardinality(String),
            bins Map(Int32, UInt64),
            made_at {UTC_TIME}
        ) ENGINE = MergeTree ORDER BY (ws, hour, model_id, class)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS class_checks (
            ws Int32,
            hour DateTime('UTC'),
            n UInt64,
            n_predictions Int64,
            last_ts Nullable({UTC_TIME}),
            confidence_sum Float64,
            made_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(made_at) ORDER BY (ws, hour)
        """,
    ],
    # 15: the per-hour sums per metadata value, which reads make one field at a time and ingest
    # never writes (`store/clickhouse/meta_sums.py`): `hour_sums`' figures split by the field's
    # value (text and number), the inferences holding each class per value, and per made hour of
    # a field what it was made from.
    [
        f"""
        CREATE TABLE IF NOT EXISTS meta_hours (
            ws Int32,
            field LowCardinality(String),
            hour DateTime('UTC'),
            field_value Nullable(String),
            field_number Nullable(Float64),
            model_id LowCardinality(String),
            device_id LowCardinality(Nullable(String)),
            task LowCardinality(String),
            n UInt64,
            n_preds Int64,
            confidence_sum Float64,
            n_timed UInt64,
            time_sum Float64,
            last_ts {UTC_TIME},
            times Map(Int64, UInt64),
            made_at {UTC_TIME}
        ) ENGINE = MergeTree ORDER BY (ws, field, hour)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS meta_class_hours (
            ws Int32,
            field LowCardinality(String),
            hour DateTime('UTC'),
            field_value Nullable(String),
            field_number Nullable(Float64),
            model_id LowCardinality(String),
            device_id LowCardinality(Nullable(String)),
            class LowCardinality(String),
            n UInt64,
            made_at {UTC_TIME}
        ) ENGINE = MergeTree ORDER BY (ws, field, hour)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS meta_checks (
            ws Int32,
            field LowCardinality(String),
            hour DateTime('UTC'),
            n UInt64,
            n_predictions Int64,
            last_ts Nullable({UTC_TIME}),
            confidence_sum Float64,
            meta_n UInt64,
            meta_last Nullable({UTC_TIME}),
            untimed_n UInt64,
            untimed_last Nullable({UTC_TIME}),
            made_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(made_at) ORDER BY (ws, field, hour)
        """,
    ],
    # 16: the per-hour verdict sums of a field holding labels (or pass/fail values), which reads
    # make one field at a time as for migration 15 (`meta_sums.VERDICTS`, read by `performance.py`): per
    # value and model, what measured accuracy needs of each labelled inference (its top
    # class, whether its classes hold the value, how many classes it has, its top confidence's
    # bin), or by a grouping field's value what tells right from wrong; and per made hour of a
    # field (and grouping field) what it was made from.
    [
        f"""
        CREATE TABLE IF NOT EXISTS verdict_hours (
            ws Int32,
            field LowCardinality(String),
            group_field LowCardinality(String),  -- "" for none
            hour DateTime('UTC'),
            field_value String,
            group_value Nullable(String),
            model_id LowCardinality(String),
            top_class LowCardinality(Nullable(String)),
            found UInt8,
            quiet UInt8,
            several UInt8,
            lone LowCardinality(Nullable(String)),
            bin Nullable(Int32),
            n UInt64,
            confidence_sum Float64,
            made_at {UTC_TIME}
        ) ENGINE = MergeTree ORDER BY (ws, field, group_field, hour)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS verdict_checks (
            ws Int32,
            field LowCardinality(String),
            group_field LowCardinality(String),
            hour DateTime('UTC'),
            n UInt64,
            n_predictions Int64,
            last_ts Nullable({UTC_TIME}),
            confidence_sum Float64,
            meta_n UInt64,
            meta_last Nullable({UTC_TIME}),
            untimed_n UInt64,
            untimed_last Nullable({UTC_TIME}),
            made_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(made_at) ORDER BY (ws, field, group_field, hour)
        """,
    ],
    # 17: each field's metadata rows counted per hour with their latest write, as an aggregate
    # projection of `metadata` kept like `hour_sums` (rebuilt by every merge, TTL and delete):
    # what tells a read which made hours of a field changed (`meta_sums.py`), where counting a
    # month of a field's rows took 50 ms or more a field at 10 million inferences.
    [
        "ALTER TABLE metadata ADD PROJECTION IF NOT EXISTS field_hours (SELECT ws, field_name, toStartOfHour(ts),"
        f" count(), max(updated_at) GROUP BY ws, field_name, toStartOfHour(ts)) {_TTL_SETTINGS}",
        f"ALTER TABLE metadata MATERIALIZE PROJECTION field_hours {_TTL_SETTINGS}, mutations_sync = 1",
    ],
    # 18: the per-hour sums of a numeric field by a second field's values, which reads make as for
    # migration 16 (`meta_sums.NUMBERS`, read by `numeric.py`): per grouping value, model and
    # device, the count, sum, least and greatest of the field's numbers; and per made hour of a
    # pair of fields what it was made from.
    [
        f"""
        CREATE TABLE IF NOT EXISTS number_hours (
            ws Int32,
            field LowCardinality(String),
            group_field LowCardinality(String),
            hour DateTime('UTC'),
            group_value Nullable(String),
            model_id LowCardinality(String),
            device_id LowCardinality(Nullable(String)),
            n UInt64,
            number_sum Float64,
            number_min Float64,
            number_max Float64,
            made_at {UTC_TIME}
        ) ENGINE = MergeTree ORDER BY (ws, field, group_field, hour)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS number_checks (
            ws Int32,
            field LowCardinality(String),
            group_field LowCardinality(String),
            hour DateTime('UTC'),
            n UInt64,
            n_predictions Int64,
            last_ts Nullable({UTC_TIME}),
            confidence_sum Float64,
            meta_n UInt64,
            meta_last Nullable({UTC_TIME}),
            untimed_n UInt64,
            untimed_last Nullable({UTC_TIME}),
            made_at {UTC_TIME}
        ) ENGINE = ReplacingMergeTree(made_at) ORDER BY (ws, field, group_field, hour)
        """,
    ],
]

SCHEMA_VERSION_TABLE = f"""
CREATE TABLE IF NOT EXISTS schema_version (version UInt32, applied_at {UTC_TIME})
ENGINE = ReplacingMergeTree ORDER BY version
"""

# The columns an inference batch is inserted with (the Arrow table of `InferenceRows`); the
# derived ones are computed by the engine.
INFERENCE_COLUMNS = (
    "ws", "inference_id", "image_index", "ts", "received_at", "model_id", "task", "device_id", "tags", "source",
    "inference_time", "image_width", "image_height", "extra", "predictions",
)
