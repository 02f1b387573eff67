"""The DuckDB schema, as numbered migrations applied in order at start-up.

A migration is never edited once released: a change to the schema is a new entry at the end.
`schema_version` records each applied version and when.
"""

from __future__ import annotations

# Settings of the database instance, given when the file is opened.
# checkpoint_threshold: DuckDB checkpoints when the WAL reaches this size. At the default 16 MB
# (about 20,000 inferences) each checkpoint rewrites the partly filled row group again and
# costs more as the table grows, halving sustained ingest. Vision Events log about 2 KB an
# event, so at 64 MB a checkpoint came every 32,000 events and took a fifth to three seconds;
# at 256 MB they are a quarter as many, for 16 % more events/s, and a crash leaves at most
# 256 MB of WAL to replay when the store is opened again (1.4 s here, docs/performance.md).
CONFIG: dict[str, str | bool | int | float | list[str]] = {"checkpoint_threshold": "256MiB"}

PREDICTION = (
    "STRUCT(class VARCHAR, class_id INTEGER, confidence DOUBLE, x DOUBLE, y DOUBLE, width DOUBLE,"
    " height DOUBLE, detection_id VARCHAR, points VARCHAR, keypoints VARCHAR)"
)

MIGRATIONS: list[str] = [
    # 1: workspaces, inferences with their predictions nested (one row, one atomic insert, so a
    # duplicate is skipped whole), metadata keyed by the id a user names, last write wins.
    f"""
    CREATE TABLE workspaces (
        id INTEGER PRIMARY KEY,
        slug VARCHAR NOT NULL UNIQUE,
        key_hash VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    );
    CREATE TABLE inferences (
        key UHUGEINT PRIMARY KEY,  -- md5 of (workspace, inference_id, image_index): the identity
        ws INTEGER NOT NULL,
        inference_id VARCHAR NOT NULL,
        image_index INTEGER NOT NULL,
        ts TIMESTAMP NOT NULL,  -- UTC, the inference's own time
        received_at TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        device_id VARCHAR,
        tags VARCHAR[] NOT NULL,
        source VARCHAR NOT NULL,
        inference_time DOUBLE,  -- seconds
        image_width INTEGER,
        image_height INTEGER,
        n_predictions INTEGER NOT NULL,
        max_confidence DOUBLE,
        sum_confidence DOUBLE NOT NULL,
        classes VARCHAR[] NOT NULL,
        predictions {PREDICTION}[] NOT NULL,
        extra VARCHAR
    );
    CREATE TABLE metadata (
        ws INTEGER NOT NULL,
        inference_id VARCHAR NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ws, inference_id, field_name)
    );
    """,
    # 2: what the Roboflow clients bring besides inferences: device facts from the inference
    # server's reports (one row a device, refreshed by every report) and uploaded images,
    # content-addressed (the file lives under the data dir, named by its SHA-256).
    """
    CREATE TABLE devices (
        ws INTEGER NOT NULL,
        device_id VARCHAR NOT NULL,
        first_seen TIMESTAMP NOT NULL,
        last_seen TIMESTAMP NOT NULL,
        server_id VARCHAR,
        server_version VARCHAR,
        hostname VARCHAR,
        platform VARCHAR,
        tags VARCHAR[] NOT NULL,
        PRIMARY KEY (ws, device_id)
    );
    CREATE TABLE images (
        ws INTEGER NOT NULL,
        sha256 VARCHAR NOT NULL,
        inference_id VARCHAR,
        content_type VARCHAR NOT NULL,
        width INTEGER,
        height INTEGER,
        size_bytes BIGINT NOT NULL,
        name VARCHAR,
        project VARCHAR,
        batch VARCHAR,
        tags VARCHAR[] NOT NULL,
        uploaded_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ws, sha256)
    );
    """,
    # 3: the 128-bit md5 number of the inference id on both sides of the metadata join. Joining
    # and semi-joining on it instead of the 36-character id string is 1.5 to 3 times faster on
    # millions of rows (a filter or group by a metadata field); md5 makes a false match as
    # unlikely as the identity key's. Filled here for stored rows, by the inserts below for new ones.
    """
    ALTER TABLE inferences ADD COLUMN id_key UHUGEINT;
    UPDATE inferences SET id_key = md5_number(inference_id);
    ALTER TABLE metadata ADD COLUMN id_key UHUGEINT;
    UPDATE metadata SET id_key = md5_number(inference_id);
    """,
    # 4: settings a workspace keeps per model; for now its ground truth (which metadata field holds
    # the expected label, and how to read it), as the JSON of `query.performance.GroundTruth`.
    """
    CREATE TABLE model_settings (
        ws INTEGER NOT NULL,
        model_id VARCHAR NOT NULL,
        ground_truth VARCHAR,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ws, model_id)
    );
    """,
    # 5: alerts and retention. A rule is the JSON of `alerts.rules.Rule`; its state is where the
    # evaluator left it (so a restart neither fires again nor forgets a firing); every change of
    # state is an event, with whether it was notified (caps count those). A workspace's retention
    # policy says how long inferences and images are kept.
    """
    CREATE TABLE alert_rules (
        ws INTEGER NOT NULL,
        rule_id VARCHAR NOT NULL,
        spec VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ws, rule_id)
    );
    CREATE TABLE alert_state (
        ws INTEGER NOT NULL,
        rule_id VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        since TIMESTAMP NOT NULL,
        value DOUBLE,
        evaluated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ws, rule_id)
    );
    CREATE TABLE alert_events (
        ws INTEGER NOT NULL,
        rule_id VARCHAR NOT NULL,
        fired_at TIMESTAMP NOT NULL,
        state VARCHAR NOT NULL,
        previous VARCHAR NOT NULL,
        value DOUBLE,
        notified BOOLEAN NOT NULL,
        detail VARCHAR NOT NULL
    );
    CREATE TABLE retention (
        ws INTEGER PRIMARY KEY,
        max_days INTEGER,
        max_inferences BIGINT,
        image_max_days INTEGER,
        updated_at TIMESTAMP NOT NULL
    );
    """,
    # 6: per-hour sums of the predictions (`store/duckdb/cache/sums.py`): a cache of the inferences,
    # re-summed when read, checked against them at start-up. `rollup_hours` records which hours
    # are summed and the count and key checksum they were summed at; `class_hours` holds the
    # predictions per model, device and class; `class_bins` their confidence histogram.
    """
    CREATE TABLE rollup_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        n BIGINT NOT NULL,
        checksum HUGEINT NOT NULL
    );
    CREATE TABLE class_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        class VARCHAR,
        n BIGINT NOT NULL,  -- predictions
        n_inferences BIGINT NOT NULL,  -- inferences (rows) holding at least one
        n_confidence BIGINT NOT NULL,
        confidence_sum DOUBLE NOT NULL,
        n_timed BIGINT NOT NULL,  -- predictions whose inference has a time
        time_sum DOUBLE NOT NULL
    );
    CREATE TABLE class_bins (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        class VARCHAR,
        bin INTEGER,  -- NULL: predictions without a confidence
        n BIGINT NOT NULL,
        confidence_sum DOUBLE
    );
    """,
    # 7: each inference's top class (of its most confident prediction, the first of equals).
    # Measured accuracy needs it for every labelled inference the model got wrong; looking it up
    # in the nested predictions meant reading them for every inference of the window, most of a
    # performance answer's time. The table is copied, not updated: DuckDB updates a column of a
    # table holding lists by deleting and inserting every row (four minutes for 5 million rows,
    # and slower reads after); the copy takes about 20 s.
    f"""
    CREATE TABLE inferences_v7 (
        key UHUGEINT PRIMARY KEY,
        ws INTEGER NOT NULL,
        inference_id VARCHAR NOT NULL,
        image_index INTEGER NOT NULL,
        ts TIMESTAMP NOT NULL,
        received_at TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        device_id VARCHAR,
        tags VARCHAR[] NOT NULL,
        source VARCHAR NOT NULL,
        inference_time DOUBLE,
        image_width INTEGER,
        image_height INTEGER,
        n_predictions INTEGER NOT NULL,
        max_confidence DOUBLE,
        sum_confidence DOUBLE NOT NULL,
        classes VARCHAR[] NOT NULL,
        predictions {PREDICTION}[] NOT NULL,
        extra VARCHAR,
        id_key UHUGEINT,
        top_class VARCHAR
    );
    INSERT INTO inferences_v7 SELECT *,
        predictions[list_position(list_transform(predictions, lambda p: p.confidence), max_confidence)].class
    FROM inferences;
    DROP TABLE inferences;
    ALTER TABLE inferences_v7 RENAME TO inferences;
    """,
    # 8: the per-hour sums gain the inferences' own figures per model and device (totals and
    # series without a class or metadata term). Every hour is summed again: the stored sums
    # predate this table.
    """
    CREATE TABLE inference_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        n BIGINT NOT NULL,
        n_predictions BIGINT NOT NULL,
        confidence_sum DOUBLE NOT NULL,
        n_timed BIGINT NOT NULL,
        time_sum DOUBLE NOT NULL
    );
    DELETE FROM rollup_hours;
    DELETE FROM class_hours;
    DELETE FROM class_bins;
    """,
    # 9: each metadata value beside a copy of its inferences' summary columns
    # (`store/duckdb/cache/meta_copies.py`), so grouping by a metadata field reads no join. A cache kept per
    # hour like the sums (`fact_hours` records the count and key checksum each hour was made
    # from; none yet, so the first read that needs an hour makes it), and per inference id after
    # a metadata write, which notes the id in `metadata_changed` in its own transaction.
    """
    CREATE TABLE fact_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        n BIGINT NOT NULL,
        checksum HUGEINT NOT NULL
    );
    CREATE TABLE metadata_facts (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        id_key UHUGEINT NOT NULL,
        ts TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        tags VARCHAR[] NOT NULL,
        inference_time DOUBLE,
        sum_confidence DOUBLE NOT NULL,
        n_predictions INTEGER NOT NULL,
        classes VARCHAR[] NOT NULL,
        max_confidence DOUBLE,
        top_class VARCHAR,
        key UHUGEINT NOT NULL
    );
    CREATE TABLE metadata_changed (
        ws INTEGER NOT NULL,
        id_key UHUGEINT NOT NULL
    );
    """,
    # 10: many named keys per workspace, each with its scopes (`store/duckdb/keys.py`); the one key
    # a workspace had becomes its key `default` with every scope. And the audit trail.
    """
    CREATE TABLE api_keys (
        ws INTEGER NOT NULL,
        key_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        key_hash VARCHAR NOT NULL,
        scopes VARCHAR[] NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP,
        revoked_at TIMESTAMP,
        last_used_at TIMESTAMP,
        expiry_noted BOOLEAN NOT NULL,
        PRIMARY KEY (ws, key_id)
    );
    INSERT INTO api_keys SELECT id, substr(md5(key_hash), 1, 12), 'default', key_hash,
        ['ingest', 'read', 'manage'], created_at, NULL, NULL, NULL, false FROM workspaces;
    CREATE TABLE audit_log (
        ws INTEGER NOT NULL,
        recorded_at TIMESTAMP NOT NULL,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        detail VARCHAR NOT NULL
    );
    """,
    # 11: typed metadata (`ingest/metavalues.py`): each value's kind (the JSON type it was sent
    # as) and the number it reads as, beside its text. Stored values were all kept as text, so
    # they stay strings; those whose text is a JSON number get their number, so range filters
    # and numeric figures read them too. The pattern is `metavalues.NUMBER_PATTERN` as released.
    """
    ALTER TABLE metadata ADD COLUMN field_type VARCHAR DEFAULT 'string';
    ALTER TABLE metadata ADD COLUMN field_number DOUBLE;
    UPDATE metadata SET field_number = TRY_CAST(field_value AS DOUBLE)
        WHERE regexp_full_match(field_value, '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?$')
            AND isfinite(TRY_CAST(field_value AS DOUBLE));
    """,
    # 12: Vision Events (`store/duckdb/events.py`, docs/vision-events.md): use cases, and each
    # event once per (workspace, event id), replaced when sent again. Its images and metadata are
    # inferences and metadata; this row is what an event without images still is.
    """
    CREATE TABLE use_cases (
        ws INTEGER NOT NULL,
        id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ws, id)
    );
    CREATE TABLE events (
        ws INTEGER NOT NULL,
        event_id VARCHAR NOT NULL,
        use_case_id VARCHAR NOT NULL,
        event_type VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        received_at TIMESTAMP NOT NULL,
        device_id VARCHAR,
        stream_id VARCHAR,
        workflow_id VARCHAR,
        external_id VARCHAR,
        n_images INTEGER NOT NULL,
        meta_types VARCHAR[] NOT NULL,
        image_meta_types VARCHAR[] NOT NULL,
        body VARCHAR NOT NULL,
        PRIMARY KEY (ws, event_id)
    );
    """,
    # 13: the metadata of a page of inferences found through an index on `id_key`: DuckDB uses
    # an index only of one column (the primary key's three are never used to look up), so the
    # list's page read every metadata row, a cost that grew with the store (160 ms at 3 million
    # values, seconds at fifty million); through the index it is the page's few rows.
    """
    CREATE INDEX metadata_id_key ON metadata (id_key);
    """,
    # 14: each Vision Event's ingestion warnings (`ingest/warnings.py`): what of it is stored but
    # not used as sent. Events stored before were checked without them: none.
    """
    ALTER TABLE events ADD COLUMN warnings VARCHAR[] DEFAULT []::VARCHAR[];
    """,
    # 15: each event's custom metadata and event-data fields on its own row too, as the texts and
    # the numbers the metadata rows hold (`EventRows.field_*`). The Vision Events query reads the
    # newest events first and stops once its page is full (`store/duckdb/events.py`), where a
    # semi-join over every metadata row took seconds on millions of events. Filled from the
    # metadata rows the stored events wrote; an UPDATE rewrites the rows in their order, which
    # keeps the row groups' time ranges the query skips by.
    """
    ALTER TABLE events ADD COLUMN field_values MAP(VARCHAR, VARCHAR);
    ALTER TABLE events ADD COLUMN field_numbers MAP(VARCHAR, DOUBLE);
    UPDATE events SET field_values = m.texts, field_numbers = m.numbers FROM (
        SELECT ws, inference_id,
            map_from_entries(list((field_name, field_value))) AS texts,
            map_from_entries(list((field_name, field_number)) FILTER (WHERE field_number IS NOT NULL)) AS numbers
        FROM metadata WHERE NOT contains(field_name, '.') OR starts_with(field_name, 've.data.')
        GROUP BY ws, inference_id
    ) AS m WHERE events.ws = m.ws AND events.event_id = m.inference_id;
    """,
    # 16: the per-hour sums become mergeable summaries of whole distributions (`store/sketch.py`),
    # so no dashboard figure reads the rows of the window's whole hours: the inference times per
    # hour, model and device in buckets of 1 % relative error (`time_hours`: percentiles), the
    # confidence histogram in 1000 bins (`class_bins`: the median confidence, and the dashboard's
    # 20 bins added up from them; `class_bin_days` the same per day), and each hour's task counts
    # and latest time beside its sums (`inference_hours`). Caches, so every hour is made again by
    # the first read that needs it.
    """
    DROP TABLE class_bins;
    CREATE TABLE class_bins (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        class VARCHAR,
        bin INTEGER,  -- sketch.confidence_bin; NULL: predictions without a confidence
        n BIGINT NOT NULL,
        confidence_sum DOUBLE
    );
    DROP TABLE inference_hours;
    CREATE TABLE inference_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        task VARCHAR,
        n BIGINT NOT NULL,
        n_predictions BIGINT NOT NULL,
        confidence_sum DOUBLE NOT NULL,
        n_timed BIGINT NOT NULL,
        time_sum DOUBLE NOT NULL,
        last_ts TIMESTAMP NOT NULL
    );
    CREATE TABLE class_bin_days (  -- class_bins added up per day (UTC): a month reads 30 days, not 720 hours
        ws INTEGER NOT NULL,
        day TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        class VARCHAR,
        bin INTEGER,
        n BIGINT NOT NULL,
        confidence_sum DOUBLE
    );
    CREATE TABLE version_hours (  -- the server versions named in `extra`, per hour, model and class held
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        class VARCHAR NOT NULL,
        version VARCHAR NOT NULL
    );
    CREATE TABLE time_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        bucket BIGINT NOT NULL,  -- sketch.time_bucket; inferences without a time are in none
        n BIGINT NOT NULL
    );
    DELETE FROM rollup_hours;
    DELETE FROM class_hours;
    """,
    # 17: each hour's first and last receipt per model and device beside its sums, so the devices
    # page's facts (first and last heard, latest inference) come from the hours, not from every
    # row the store holds. Caches: every hour is made again by the first read that needs it.
    """
    ALTER TABLE inference_hours ADD COLUMN first_received TIMESTAMP;
    ALTER TABLE inference_hours ADD COLUMN last_received TIMESTAMP;
    DELETE FROM rollup_hours;
    DELETE FROM inference_hours;
    DELETE FROM class_hours;
    DELETE FROM class_bins;
    DELETE FROM class_bin_days;
    DELETE FROM time_hours;
    DELETE FROM version_hours;
    """,
    # 18: the metadata copies summed per hour and value (`store/duckdb/cache/meta_copies.py`), as the
    # inferences are in the sums: counts and sums per model and device, times in the sketch's
    # buckets, inferences per class. A month grouped by a metadata field then reads hours, not a
    # copy per inference. Caches of the copies: every hour is made again when first read.
    """
    CREATE TABLE meta_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        n BIGINT NOT NULL,
        n_predictions BIGINT NOT NULL,
        confidence_sum DOUBLE NOT NULL,
        n_timed BIGINT NOT NULL,
        time_sum DOUBLE NOT NULL,
        last_ts TIMESTAMP NOT NULL
    );
    CREATE TABLE meta_time_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        bucket BIGINT NOT NULL,
        n BIGINT NOT NULL
    );
    CREATE TABLE meta_class_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        class VARCHAR NOT NULL,
        n BIGINT NOT NULL
    );
    DELETE FROM fact_hours;
    DELETE FROM metadata_facts;
    """,
    # 19: the copies carry their value's number, so a range term on a numeric field selects its
    # copies as a text term does (`cache/meta_filter.py`); and a numeric field's numbers summed
    # per hour, model and device, alone and per value of each field beside it in the hour
    # (`meta_number_hours`, `store/duckdb/numeric.py`). Caches of the copies: every hour is made
    # again when first read.
    """
    ALTER TABLE metadata_facts ADD COLUMN field_number DOUBLE;
    CREATE TABLE meta_number_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        device_id VARCHAR,
        group_field VARCHAR,  -- NULL: the numbers of the hour, model and device, not grouped
        group_value VARCHAR,  -- NULL beside a group field: the inferences without it
        n BIGINT NOT NULL,
        number_sum DOUBLE NOT NULL,
        number_min DOUBLE NOT NULL,
        number_max DOUBLE NOT NULL
    );
    DELETE FROM fact_hours;
    DELETE FROM metadata_facts;
    """,
    # 20: what measured accuracy counts, summed per hour from the copies of each text value
    # (`store/duckdb/cache/meta_verdicts.py`): per value, model, the inference's top class, whether
    # its classes hold the value, whether it found anything, its confidence bin; and the same per
    # value of each other field of the inference (the accuracy per group). Caches of the copies:
    # every hour is made again when first read.
    """
    CREATE TABLE meta_verdict_hours (
        ws INTEGER NOT NULL,
        hour TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        top_class VARCHAR,
        found BOOLEAN,          -- the inference's classes hold the value
        quiet BOOLEAN NOT NULL, -- no confidence at or above 0 (nothing found)
        several BOOLEAN,        -- more than one class found (NULL beside a group field)
        lone VARCHAR,           -- the one class found, if one (NULL beside a group field)
        bin INTEGER,            -- the top confidence's bin of `meta_verdicts.BINS` (NULL beside a group field)
        group_field VARCHAR,    -- NULL: the value alone; else another field of the same inferences
        group_value VARCHAR,
        n BIGINT NOT NULL,
        confidence_sum DOUBLE   -- of the top confidences (NULL beside a group field)
    );
    DELETE FROM fact_hours;
    DELETE FROM metadata_facts;
    """,
    # 21: the same sums per day, added up from the day's hours and made again with any of them
    # (`store/duckdb/cache/meta_verdicts.py`): a month at a bucket of days reads 30 days' rows,
    # not 720 hours'. Made here from the hours already summed, which stay as current as they were.
    """
    CREATE TABLE meta_verdict_days (
        ws INTEGER NOT NULL,
        day TIMESTAMP NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        top_class VARCHAR,
        found BOOLEAN,
        quiet BOOLEAN NOT NULL,
        several BOOLEAN,
        lone VARCHAR,
        bin INTEGER,
        group_field VARCHAR,
        group_value VARCHAR,
        n BIGINT NOT NULL,
        confidence_sum DOUBLE
    );
    INSERT INTO meta_verdict_days
    SELECT ws, date_trunc('day', hour), field_name, field_value, model_id, top_class, found, quiet, several, lone,
        bin, group_field, group_value, sum(n), sum(confidence_sum)
    FROM meta_verdict_hours GROUP BY ALL;
    """,
    # 22: the metadata rows counted per field, value and kind (`store/duckdb/cache/meta_counts.py`),
    # made by the first call listing the fields.
    """
    CREATE TABLE metadata_value_counts (
        ws INTEGER NOT NULL,
        field_name VARCHAR NOT NULL,
        field_value VARCHAR NOT NULL,
        field_type VARCHAR,
        n BIGINT NOT NULL
    );
    """,
]

# Derived columns are computed by DuckDB from the nested predictions while inserting, so the
# Python side only builds the raw columns. The confidences are listed once and read three times.
_SELECT_BATCH = """
SELECT
    md5_number(ws::VARCHAR || chr(1) || inference_id || chr(1) || image_index::VARCHAR),
    ws, inference_id, image_index, ts, received_at, model_id, task, device_id, tags, source,
    inference_time, image_width, image_height,
    len(predictions),
    list_max(confidences),
    coalesce(list_sum(confidences), 0),
    list_sort(list_distinct(list_transform(predictions, lambda p: p.class))),
    predictions, extra,
    md5_number(inference_id),
    predictions[list_position(confidences, list_max(confidences))].class
FROM (SELECT *, list_transform(predictions, lambda p: p.confidence) AS confidences FROM batch)
"""

# The common case, a batch of new inferences, as a plain INSERT: about twice as fast as
# INSERT OR IGNORE, whose conflict checking DuckDB pays row by row. It fails whole on any key
# already stored (or twice in the batch), and the caller then rolls back and runs the dedup one.
INSERT_NEW_INFERENCES = "INSERT INTO inferences" + _SELECT_BATCH

# Skips identities already stored, and repeats within the batch (the first one wins).
INSERT_INFERENCES = "INSERT OR IGNORE INTO inferences" + _SELECT_BATCH

_SELECT_META_BATCH = """
SELECT ws, inference_id, field_name, field_value, updated_at, md5_number(inference_id), field_type, field_number
FROM meta_batch
"""

UPSERT_METADATA = "INSERT OR REPLACE INTO metadata" + _SELECT_META_BATCH

# Metadata of ids holding none of these fields yet (a new Vision Event's): the plain INSERT skips
# the upsert's row-by-row replacing, and fails whole on a key already stored.
INSERT_NEW_METADATA = "INSERT INTO metadata" + _SELECT_META_BATCH

# The metadata of a page of inferences: matched on the 128-bit `id_key` through its index
# (migration 13), the ids themselves checked by the caller on the few rows found.
METADATA_OF = """
SELECT inference_id, field_name, field_value, field_type FROM metadata
WHERE ws = ? AND id_key IN (SELECT md5_number(unnest(?::VARCHAR[]))) ORDER BY field_name
"""

# In the same transaction as UPSERT_METADATA: the ids whose copies in `metadata_facts` are now
# out of date, for the next read that needs them to re-make.
NOTE_METADATA_CHANGED = "INSERT INTO metadata_changed SELECT ws, md5_number(inference_id) FROM meta_batch"

# One row per device: the span of reports grows, the facts are the latest report's; a fact the
# latest report leaves out (NULL; tags NULL = not reported) keeps the stored one.
UPSERT_DEVICES = """
INSERT INTO devices SELECT ws, device_id, first_seen, last_seen, server_id, server_version, hostname, platform,
    coalesce(tags, []::VARCHAR[])
FROM device_batch
ON CONFLICT (ws, device_id) DO UPDATE SET
    first_seen = least(devices.first_seen, excluded.first_seen),
    last_seen = greatest(devices.last_seen, excluded.last_seen),
    server_id = CASE WHEN excluded.last_seen >= devices.last_seen
        THEN coalesce(excluded.server_id, devices.server_id) ELSE devices.server_id END,
    server_version = CASE WHEN excluded.last_seen >= devices.last_seen
        THEN coalesce(excluded.server_version, devices.server_version) ELSE devices.server_version END,
    hostname = CASE WHEN excluded.last_seen >= devices.last_seen
        THEN coalesce(excluded.hostname, devices.hostname) ELSE devices.hostname END,
    platform = CASE WHEN excluded.last_seen >= devices.last_seen
        THEN coalesce(excluded.platform, devices.platform) ELSE devices.platform END
"""

# After UPSERT_DEVICES: the latest report's tags, when it reported any (an empty list clears them).
UPDATE_DEVICE_TAGS = """
UPDATE devices SET tags = b.tags FROM device_batch b
WHERE devices.ws = b.ws AND devices.device_id = b.device_id AND b.tags IS NOT NULL
    AND b.last_seen >= devices.last_seen
"""
