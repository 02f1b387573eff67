"""What every storage backend provides: append, upsert metadata, the product's queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from inferwatch.drift import SampleRow
from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.query.performance import Counts, GroundTruth
from inferwatch.store.events import EventQuery, EventRecord, EventRows, EventTables, UseCaseFigures, UseCaseRecord


class StoreLocked(Exception):
    """Another process holds the store (an embedded database admits one process)."""


@dataclass(frozen=True, slots=True)
class WorkspaceRecord:
    id: int
    slug: str
    key_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One named key of a workspace: what it may do (`scopes`) and its life. The key itself is
    never stored, only its SHA-256. `last_used_at` is kept to the minute, not per request."""

    ws: int
    key_id: str  # public, names the key in the API and the audit (the secret never appears)
    name: str
    key_hash: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    expiry_noted: bool = False  # its expiry is in the audit trail


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who (a key's name, or `cli` for the command line) did what to which thing, when."""

    ws: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str  # JSON of what changed


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended, in the list's order (time, inference id, image index; newest first)."""

    ts_us: int
    inference_id: str
    image_index: int


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An uploaded image of a workspace; its bytes are the file named by sha256."""

    ws: int
    sha256: str
    inference_id: str | None
    content_type: str
    width: int | None
    height: int | None
    size_bytes: int
    name: str | None
    project: str | None
    batch: str | None
    tags: list[str]
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRuleRecord:
    """A rule as stored: `spec` is the JSON of `alerts.rules.Rule`. Times are naive UTC."""

    ws: int
    rule_id: str
    spec: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where the evaluator left a rule: its state since when, the last value measured."""

    state: str
    since: datetime
    value: float | None
    evaluated_at: datetime


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change of a rule's state; `notified` says whether its channels were told (caps count
    these), `detail` is JSON (each channel's outcome, or why nothing was sent)."""

    ws: int
    rule_id: str
    at: datetime
    state: str
    previous: str
    value: float | None
    notified: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long a workspace keeps its data; None: no limit of that kind."""

    max_days: int | None = None
    max_inferences: int | None = None
    image_max_days: int | None = None


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What a retention sweep removed; `orphan_images` are image files no workspace names any more."""

    inferences: int
    metadata: int
    images: int
    orphan_images: list[str]
    events: int = 0  # Vision Events past the days policy (their images are inferences, above)


class InferenceRow(msgspec.Struct, frozen=True):
    """One image of an inference as stored: times naive UTC, predictions without their empty
    fields (points and keypoints decoded), `extra` what its format carried besides."""

    inference_id: str
    image_index: int
    timestamp: datetime
    received_at: datetime
    model_id: str
    task: str
    device_id: str | None
    tags: list[str]
    source: str
    inference_time: float | None
    image_width: int | None
    image_height: int | None
    n_predictions: int
    max_confidence: float | None
    classes: list[str]
    predictions: list[dict[str, Any]]
    extra: dict[str, Any]


class Totals(msgspec.Struct, frozen=True):
    """Figures of the inferences in some filters; percentiles and averages None without values."""

    inferences: int
    predictions: int
    avg_inference_time: float | None
    p50_inference_time: float | None
    p95_inference_time: float | None
    avg_confidence: float | None
    devices: int
    models: int


class SeriesPoint(msgspec.Struct, frozen=True):
    """A time bucket's figures for one group (None: no group, or no value of the field)."""

    time: datetime  # the bucket's start, naive UTC
    group: str | None
    count: int
    predictions: int
    avg_inference_time: float | None
    avg_confidence: float | None


class NumericPoint(msgspec.Struct, frozen=True):
    """A numeric metadata field's figures over the inferences of one time bucket (None: the whole
    window) and group (None: no group, or the inferences without the group's field) that hold a
    number in it: how many, their average, least and greatest."""

    time: datetime | None
    group: str | None
    count: int
    avg: float | None
    min: float | None
    max: float | None


class Device(msgspec.Struct, frozen=True):
    """A device a server reported or an inference named, with its inferences in a period.
    Times are naive UTC."""

    device_id: str
    first_seen: datetime | None
    last_seen: datetime | None
    last_inference_at: datetime | None
    server_id: str | None
    server_version: str | None
    hostname: str | None
    platform: str | None
    tags: list[str]
    inferences: int


class ModelSummary(msgspec.Struct, frozen=True):
    """One model in a period: volume, average confidence and time, latest inference (naive UTC),
    distinct devices."""

    model_id: str
    task: str
    inferences: int
    avg_confidence: float | None
    avg_inference_time: float | None
    p95_inference_time: float | None
    last_seen: datetime
    devices: int


class GroupRow(msgspec.Struct, frozen=True):
    """One value of a grouping (None: the inferences without it) in a period, with its most
    predicted classes as (class, inferences holding one), most first. Times are naive UTC."""

    value: Any
    inferences: int
    avg_confidence: float | None
    avg_inference_time: float | None
    p95_inference_time: float | None
    predictions: int
    devices: int
    last_seen: datetime | None
    classes: list[tuple[str, int]]


class ClassDistribution(msgspec.Struct, frozen=True):
    """One predicted class (None: predictions without one): its predictions, the inferences
    holding one, their average confidence."""

    name: str | None
    predictions: int
    inferences: int
    avg_confidence: float | None


class Distributions(msgspec.Struct, frozen=True):
    """Confidence histograms over `bins` edges (all predictions, and the most predicted classes'),
    and the classes, most predicted first."""

    bins: list[float]
    confidence: list[int]
    confidence_by_class: dict[str, list[int]]
    classes: list[ClassDistribution]


class FieldValue(msgspec.Struct, frozen=True):
    value: str
    count: int


class MetadataField(msgspec.Struct, frozen=True):
    """A metadata field: its distinct values, the rows holding it, its most frequent values (as
    text), and the kinds its values were sent as (`string`, `number`, `boolean`), so a client
    knows which fields take range filters and numeric figures."""

    name: str
    distinct_values: int
    inferences: int
    top_values: list[FieldValue]
    types: list[str]


class ClassFigures(msgspec.Struct, frozen=True):
    """One model's predictions of one class: the inferences (rows) holding one, the predictions,
    their average and median confidence, the inferences' average time, the server versions."""

    inferences: int
    predictions: int
    avg_confidence: float | None
    median_confidence: float | None
    avg_inference_time: float | None
    versions: list[str]


class ClassStats(msgspec.Struct, frozen=True):
    """Figures of a period: in all, inferences per model, and per (model, predicted class)."""

    inferences: int
    avg_confidence: float | None
    avg_inference_time: float | None
    models: dict[str, int]
    classes: dict[tuple[str, str], ClassFigures]


GROUPS = ("model_id", "device_id", "class")


class Store(Protocol):
    # Whether other servers may write the same store (replicas behind a load balancer): their
    # workspace changes are then read again now and then (workspaces.KeyRing).
    shared: bool
    # Set by close(): what still runs beside the server (the key ring's refresh) stops reading.
    closed: bool

    def migrate(self) -> int:
        """Brings the schema to the current version; returns that version."""
        ...

    def close(self) -> None: ...

    def storage_failed(self, exc: BaseException) -> bool:
        """Whether `exc`, raised by a write, is the storage failing (a full disk, an I/O error)
        rather than the data: the writer then refuses writes and calls `reopen` once the volume
        takes writes again."""
        ...

    def reopen(self) -> None:
        """Makes the store usable again after a storage failure (DuckDB invalidates its database
        after a failed write; a new one reads the file and its log back)."""
        ...

    def ingesting(self, busy: bool) -> None:
        """The writer has ingest work in hand (True), or has run out of it (False). An embedded
        engine that spreads every statement over its worker threads may run the writer's
        statements on the writer's thread alone meanwhile, and give the workers back to the
        reads once it is idle."""
        ...

    def checkpoint(self) -> None:
        """Folds the write-ahead log into the store's file (before a backup copies it)."""
        ...

    def append(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> int:
        """Writes all in one transaction; inferences already stored are skipped, device facts upserted.
        Returns how many inferences were new."""
        ...

    def workspaces(self) -> list[WorkspaceRecord]: ...

    def create_workspace(self, slug: str, key_hash: str) -> WorkspaceRecord: ...

    def set_key_hash(self, slug: str, key_hash: str) -> WorkspaceRecord: ...

    def list_inferences(
        self, ws: int, filters: Filters, after: Cursor | None, limit: int
    ) -> tuple[list[InferenceRow], Cursor | None]:
        """A page, and where the next one starts (None on the last page)."""
        ...

    def get_inference(self, ws: int, inference_id: str) -> list[InferenceRow]:
        """Every image stored under the id (a batched request shares one id)."""
        ...

    def metadata_of(self, ws: int, inference_ids: list[str]) -> dict[str, dict[str, MetaScalar]]:
        """Each inference's fields, a value as the JSON type it was sent as."""
        ...

    def totals(self, ws: int, filters: Filters) -> Totals: ...

    def series(
        self, ws: int, filters: Filters, bucket: timedelta, group_by: str | None
    ) -> list[SeriesPoint]:
        """Points of (time, group, figures); group_by is one of GROUPS or `meta.<field>`."""
        ...

    def totals_and_series(
        self, ws: int, filters: Filters, bucket: timedelta, group_by: str | None
    ) -> tuple[Totals, list[SeriesPoint]]:
        """`totals` and `series` of one window, as `/stats` shows them: a store may read both in
        one pass over the window's rows."""
        ...

    def class_stats(self, ws: int, start: datetime, end: datetime, model_ids: tuple[str, ...]) -> ClassStats:
        """Totals, inferences per model and figures per (model, predicted class) over [start, end)."""
        ...

    def devices(self, ws: int, start: datetime, end: datetime) -> list[Device]:
        """Every device with its facts, last seen, and its inferences over [start, end)."""
        ...

    def metadata_fields(self, ws: int, top: int) -> list[MetadataField]: ...

    # -- the dashboard's figures (same filters as everything else) --------------------------
    def models(self, ws: int, filters: Filters) -> list[ModelSummary]:
        """One row per model: inferences, average confidence and time, p95 time, latest inference."""
        ...

    def distributions(self, ws: int, filters: Filters, bins: int) -> Distributions:
        """Predictions per class, and confidence histograms over `bins` equal bins of [0, 1]."""
        ...

    def group_table(self, ws: int, filters: Filters, group_by: str) -> list[GroupRow]:
        """One row per value of model_id, device_id or meta.<field>, with its figures and class mix."""
        ...

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket: timedelta | None) -> list[NumericPoint]:
        """The metadata field's numbers (`field_number`) over the filters' inferences: count,
        average, least and greatest per group (None, model_id, device_id or meta.<field>) and,
        with a `bucket`, per time bucket; ordered by time and group, NULL groups last. Only
        groups and buckets where some inference holds a number are listed."""
        ...

    def numeric_figures_and_whole(self, ws: int, filters: Filters, field: str, group_by: str | None,
                                  bucket: timedelta | None) -> tuple[list[NumericPoint], NumericPoint | None]:
        """`numeric_figures` per group and bucket, and over the whole window (None if no
        inference holds a number), as `/stats` and `/groups` show them: a store may read both
        in one pass."""
        ...

    # -- ground truth (query.performance) ------------------------------------------------------
    def ground_truth(self, ws: int, model_id: str) -> GroundTruth | None: ...

    def set_ground_truth(self, ws: int, model_id: str, setting: GroundTruth | None) -> None:
        """A write: from the writer thread."""
        ...

    def performance_counts(self, ws: int, filters: Filters, setting: GroundTruth, bucket: timedelta,
                           group_field: str | None, bins: int) -> Counts:
        """Verdict against label for every inference in the filters, counted every way the
        performance report needs."""
        ...

    # -- drift ---------------------------------------------------------------------------------
    def drift_sample(self, ws: int, filters: Filters, limit: int,
                     numbers: Sequence[str] | None = ()) -> list[SampleRow]:
        """At most `limit` inferences in the filters, newest first, as drift reads them, each
        with the numbers of its metadata fields named in `numbers` (None: every field whose
        value was sent as a number, which is how drift finds its `meta.<field>` features)."""
        ...

    # -- alerts (writes from the writer thread) -------------------------------------------------
    def alert_rules(self, ws: int | None) -> list[AlertRuleRecord]:
        """The workspace's rules (every workspace's for None), by workspace and id."""
        ...

    def put_alert_rule(self, record: AlertRuleRecord) -> None: ...

    def delete_alert_rule(self, ws: int, rule_id: str) -> bool:
        """Removes the rule and its state (its history stays); False if there was none."""
        ...

    def alert_states(self, ws: int) -> dict[str, AlertState]: ...

    def set_alert_state(self, ws: int, rule_id: str, state: AlertState) -> None: ...

    def add_alert_event(self, event: AlertEvent) -> None: ...

    def alert_events(self, ws: int, rule_id: str | None, limit: int) -> list[AlertEvent]:
        """Newest first."""
        ...

    def notifications_since(self, ws: int, rule_id: str, since: datetime) -> int:
        """Events of the rule at or after `since` whose channels were told (what caps count)."""
        ...

    # -- retention ---------------------------------------------------------------------------------
    def retention_policy(self, ws: int) -> RetentionPolicy | None: ...

    def set_retention_policy(self, ws: int, policy: RetentionPolicy | None) -> None: ...

    def retention_policies(self) -> dict[int, RetentionPolicy]: ...

    def sweep(self, ws: int, before: datetime | None, keep_newest: int | None,
              images_before: datetime | None) -> SweepResult:
        """Deletes the workspace's inferences older than `before` or past its `keep_newest`
        newest, their metadata (unless another image of the same id stays), and its images
        uploaded before `images_before`."""
        ...

    def usage(self, ws: int) -> dict[str, dict[str, int]]:
        """Per table: the workspace's rows, and its bytes (estimated in proportion to rows, from
        the table's size on disk)."""
        ...

    def insert_image(self, image: ImageRecord) -> bool:
        """Stores the image's row; False if the workspace already holds these bytes (then only a
        missing inference id is filled in)."""
        ...

    def image(self, ws: int, sha256: str) -> ImageRecord | None: ...

    def image_of_inference(self, ws: int, inference_id: str) -> ImageRecord | None:
        """The latest image uploaded for the inference."""
        ...

    def api_keys(self, ws: int | None) -> list[ApiKeyRecord]:
        """The workspace's keys (every workspace's for None), revoked ones included."""
        ...

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Stores a key, or replaces it whole (revocation, expiry); its last use is kept."""
        ...

    def note_key_use(self, used: dict[tuple[int, str], datetime]) -> None:
        """Moves the keys' (workspace, key id) last use forward to the times given."""
        ...

    def add_audit(self, record: AuditRecord) -> None: ...

    def audit(self, ws: int, limit: int) -> list[AuditRecord]:
        """The workspace's audit trail, newest first."""
        ...

    # -- Vision Events (store/events.py; docs/vision-events.md) --------------------------------

    def use_cases(self, ws: int) -> list[UseCaseRecord]:
        """The workspace's use cases, archived ones included, oldest first."""
        ...

    def put_use_case(self, record: UseCaseRecord) -> None:
        """Stores a use case, or replaces it whole (a new name or status)."""
        ...

    def use_case_figures(self, ws: int) -> dict[str, UseCaseFigures]:
        """Per use case id holding any: its events and the newest one's time."""
        ...

    def put_events(self, rows: EventRows) -> None:
        """Stores the events; an event id the workspace holds already is replaced."""
        ...

    def add_new_events(self, tables: EventTables) -> int | None:
        """Stores new events with their inferences and metadata in one commit, when none of
        their ids is stored yet and none of those rows exists; returns how many inferences were
        new, or None having written nothing: the caller then replaces what is stored
        (`ingest/vision_events.store`). A store may always answer None."""
        ...

    def event_bodies(self, ws: int, event_ids: Sequence[str]) -> dict[str, str]:
        """The stored body of each of these events the workspace holds."""
        ...

    def forget_event_rows(self, ws: int, event_ids: Sequence[str], fields: Sequence[tuple[str, str]]) -> None:
        """Deletes the inferences these events' images became, and the (event id, field) metadata
        rows they wrote: what a re-sent event's new version then writes afresh."""
        ...

    def query_events(self, ws: int, query: EventQuery) -> list[EventRecord]:
        """Up to `query.limit` events matching, newest first (time, then id, descending)."""
        ...

    def delete_events(self, ws: int, use_case_id: str, event_ids: Sequence[str]) -> list[str]:
        """Deletes those of the use case's events that exist; returns their ids."""
        ...

    def find_events(self, ws: int, event_ids: Sequence[str]) -> list[EventRecord]:
        """Those of the ids the workspace holds, whatever their use case, with use case and type,
        ordered by id."""
        ...

    def feedback_of(self, ws: int, event_id: str) -> list[EventRecord]:
        """The operator_feedback events reviewing `event_id`, oldest first (by arrival, then id):
        its feedback history, the last one its latest verdict."""
        ...

    def event_schema(self, ws: int, use_case_id: str, images: bool) -> list[str]:
        """The distinct `<kind>:<key>` pairs of the use case's custom metadata (or, `images`,
        of its images' metadata)."""
        ...
