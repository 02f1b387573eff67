"""What both stores share about Vision Events: the rows an event is written as, the records the
reads return, and the one query object both compile to SQL (docs/vision-events.md).

An event's images and metadata are inferences and metadata like any other; only the event itself
(what an event without images still is) and its use case live in tables of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate, chain
from typing import Any

import pyarrow as pa

from inferwatch.ingest.rows import Columns, InferenceRows, MetadataRows
from inferwatch.query.filters import Filters, MetaTerm

ACTIVE = "active"
INACTIVE = "inactive"
NO_FEEDBACK = "none"
# Metadata of an operator_feedback event naming the event it reviews (`eventData.relatedEventId`).
RELATED_FIELD = "ve.data.relatedEventId"


@dataclass(frozen=True, slots=True)
class UseCaseRecord:
    """A named scope of events; `inactive` is archived (kept, refusing new events). Naive UTC."""

    ws: int
    id: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UseCaseFigures:
    """What a use case holds: its events and the time of the newest."""

    events: int
    last_event_at: datetime | None
    event_types: tuple[str, ...] = ()  # the types its events have, sorted


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored event as the query answers it: its body as sent, its time and when it arrived."""

    event_id: str
    ts: datetime
    received_at: datetime
    body: str
    use_case_id: str = ""  # filled where the reader asked for it (`find_events`, `feedback_of`)
    event_type: str = ""
    warnings: tuple[str, ...] = ()  # its ingestion warnings (`ingest/warnings.py`)


@dataclass(frozen=True, slots=True)
class ContextTerm:
    """`deviceId`, `streamId`, `workflowId` or `externalId` equal (`eq`) or not (`neq`) to a value:
    an event without the field is none of its values."""

    column: str  # device_id, stream_id, workflow_id, external_id
    equal: bool
    value: str


@dataclass(frozen=True, slots=True)
class EventQuery:
    """One page of a use case's events, newest first (time, then event id, descending)."""

    use_case_id: str
    limit: int
    event_types: tuple[str, ...] = ()
    start: datetime | None = None  # inclusive, naive UTC
    end: datetime | None = None  # inclusive, naive UTC
    contexts: tuple[ContextTerm, ...] = ()
    meta: tuple[MetaTerm, ...] = ()  # on the event id's metadata (custom metadata, `ve.data.*`)
    # Class and confidence terms one prediction of one of the event's images must meet.
    detection: Filters | None = None
    # The latest operator verdict is one of these (`correct`, `incorrect`, `inconclusive`, or
    # NO_FEEDBACK: none yet); empty: any.
    feedback: tuple[str, ...] = ()
    # Only events with ingestion warnings (True), only those without (False); None: any.
    warnings: bool | None = None
    after: tuple[int, str] | None = None  # (ts in µs, event id) of the previous page's last event


@dataclass(slots=True)
class EventRows(Columns):
    """Events to store, one entry each; a later entry of the same id replaces an earlier one. The
    writer commits several requests together, extending one instance with each's (`Columns`)."""

    ws: list[int] = field(default_factory=list)
    event_id: list[str] = field(default_factory=list)
    use_case_id: list[str] = field(default_factory=list)
    event_type: list[str] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    received_us: list[int] = field(default_factory=list)
    device_id: list[str | None] = field(default_factory=list)
    stream_id: list[str | None] = field(default_factory=list)
    workflow_id: list[str | None] = field(default_factory=list)
    external_id: list[str | None] = field(default_factory=list)
    n_images: list[int] = field(default_factory=list)
    # "<kind>:<key>" of each custom-metadata entry and of each image metadata entry: the schemas.
    meta_types: list[list[str]] = field(default_factory=list)
    image_meta_types: list[list[str]] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)  # its ingestion warnings, [] for none
    # The fields the event writes as metadata of its own id, its custom metadata and `ve.data.*`
    # (`ingest.vision_events.to_rows`): each one's text, and the number of those that read as one.
    # Stored on the event's row as well, so the query filters the events it reads in time order
    # without a semi-join over every metadata row (docs/vision-events.md, "Query").
    field_names: list[list[str]] = field(default_factory=list)
    field_values: list[list[str]] = field(default_factory=list)
    number_names: list[list[str]] = field(default_factory=list)
    number_values: list[list[float]] = field(default_factory=list)

    def to_arrow(self) -> pa.Table:
        """The last entry per (workspace, event id): an upsert may name each key once."""
        last = {key: i for i, key in enumerate(zip(self.ws, self.event_id, strict=True))}
        keep = sorted(last.values())
        every = len(keep) == len(self.event_id)  # no id twice (the common case): the lists as they are

        def column(values: list[Any], type_: pa.DataType) -> pa.Array:
            return pa.array(values if every else [values[i] for i in keep], type_)

        text, times, texts = pa.string(), pa.timestamp("us"), pa.list_(pa.string())
        return pa.table({
            "ws": column(self.ws, pa.int32()),
            "event_id": column(self.event_id, text),
            "use_case_id": column(self.use_case_id, text),
            "event_type": column(self.event_type, text),
            "ts": column(self.ts_us, times),
            "received_at": column(self.received_us, times),
            "device_id": column(self.device_id, text),
            "stream_id": column(self.stream_id, text),
            "workflow_id": column(self.workflow_id, text),
            "external_id": column(self.external_id, text),
            "n_images": column(self.n_images, pa.int32()),
            "meta_types": column(self.meta_types, texts),
            "image_meta_types": column(self.image_meta_types, texts),
            "body": column(self.body, text),
            "warnings": column(self.warnings, texts),
            "field_values": _map(self.field_names, self.field_values, pa.string(), None if every else keep),
            "field_numbers": _map(self.number_names, self.number_values, pa.float64(), None if every else keep),
        })


@dataclass(frozen=True, slots=True)
class EventTables:
    """New events' rows as Arrow tables, for `Store.add_new_events`: made by each request before
    its rows are queued, so the writer's one thread, which every request waits on, only joins
    them (`joined`) and hands them to the store. Each request's metadata keys are its own
    (`MetadataRows.to_arrow`); a key two joined requests share fails the plain INSERT, and the
    caller then writes through the general path."""

    events: pa.Table
    inferences: pa.Table | None  # None: no event has an image
    metadata: pa.Table | None  # None: no metadata

    @classmethod
    def of(cls, rows: InferenceRows, meta: MetadataRows, events: EventRows) -> EventTables:
        return cls(events.to_arrow(), rows.to_arrow() if len(rows) else None, meta.to_arrow() if len(meta) else None)

    @classmethod
    def joined(cls, parts: list[EventTables]) -> EventTables:
        """One table of each kind from several requests' (a concatenation; nothing is copied)."""
        if len(parts) == 1:
            return parts[0]

        def join(tables: list[pa.Table | None]) -> pa.Table | None:
            present = [t for t in tables if t is not None]
            return pa.concat_tables(present) if present else None

        events = pa.concat_tables([p.events for p in parts])
        return cls(events, join([p.inferences for p in parts]), join([p.metadata for p in parts]))

    @property
    def n_inferences(self) -> int:
        return 0 if self.inferences is None else self.inferences.num_rows


def _map(keys: list[list[str]], values: list[list[Any]], type_: pa.DataType, keep: list[int] | None) -> pa.Array:
    """A MAP(VARCHAR, type_) per event kept (`keep`, None: every one) from its keys and values,
    flattened in one Arrow call each."""
    if keep is not None:
        keys, values = [keys[i] for i in keep], [values[i] for i in keep]
    offsets = pa.array([0, *accumulate(map(len, keys))], pa.int32())
    return pa.MapArray.from_arrays(offsets, pa.array(list(chain.from_iterable(keys)), pa.string()),
                                   pa.array(list(chain.from_iterable(values)), type_))


def schema_of(pairs: list[str]) -> dict[str, list[str]]:
    """`<kind>:<key>` entries as {key: [kinds, sorted]}, keys sorted: the custom-metadata schema."""
    found: dict[str, set[str]] = {}
    for pair in pairs:
        kind, _, key = pair.partition(":")
        found.setdefault(key, set()).add(kind)
    return {key: sorted(found[key]) for key in sorted(found)}
