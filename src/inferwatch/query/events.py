"""The Vision Events query body (`POST /vision-events/query`) parsed into the one `EventQuery`
both stores compile, and the opaque cursor its pages are chained by.

Strict, as every inferwatch filter: an unknown key or operator is a 400, so a misspelt filter
never silently widens the answer. Custom-metadata and event-data filters become the metadata
terms every other read uses (`filters.typed_term`); event data is metadata `ve.data.<column>`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import msgspec

from inferwatch.errors import InvalidRequest
from inferwatch.ingest.fields import ClassName, Confidence, decode
from inferwatch.ingest.vision_events import DATA_PREFIX, EVENT_TYPES, Id
from inferwatch.query.filters import Filters, MetaTerm, parse_time, typed_term
from inferwatch.store.events import ContextTerm, EventQuery
from inferwatch.store.rows import naive_utc

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_TYPES = 20
MAX_TERMS = 100
_CONTEXTS = {"deviceId": "device_id", "streamId": "stream_id", "workflowId": "workflow_id",
             "externalId": "external_id"}
CONTEXT_COLUMNS = _CONTEXTS  # the dashboard's events page takes the same four context filters
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Context(msgspec.Struct, forbid_unknown_fields=True):
    operator: Literal["eq", "neq"]
    value: Id


class MetadataFilter(msgspec.Struct, forbid_unknown_fields=True):
    field: FieldName
    operator: str
    value: Any
    type: Literal["string", "number", "boolean"] | None = None


class FieldFilter(msgspec.Struct, forbid_unknown_fields=True):
    column: FieldName
    operator: str
    value: Any


class Detection(msgspec.Struct, forbid_unknown_fields=True):
    """inferwatch's name for the detected-class filter Roboflow's dashboard has (its API name is
    not public): an image of the event found one of `classes`, at `minConfidence` or more."""

    classes: Annotated[list[ClassName], msgspec.Meta(min_length=1, max_length=MAX_TERMS)]
    minConfidence: Confidence | None = None


class QueryBody(msgspec.Struct, forbid_unknown_fields=True):
    useCaseId: Id
    eventType: str | None = None
    eventTypes: Annotated[list[str], msgspec.Meta(max_length=MAX_TYPES)] = []
    startTime: str | None = None
    endTime: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: str | None = None
    deviceId: Context | None = None
    streamId: Context | None = None
    workflowId: Context | None = None
    externalId: Context | None = None
    customMetadataFilters: Annotated[list[MetadataFilter], msgspec.Meta(max_length=MAX_TERMS)] = []
    eventFieldFilters: Annotated[list[FieldFilter], msgspec.Meta(max_length=MAX_TERMS)] = []
    detection: Detection | None = None
    # The latest operator verdict: any of these, "none" for events nobody has reviewed yet.
    feedback: Annotated[list[Literal["correct", "incorrect", "inconclusive", "none"]],
                        msgspec.Meta(max_length=4)] = []
    # Only events stored with ingestion warnings (true) or only those without (false); a name the
    # SDK's `query_vision_events(..., warnings=True)` sends as it is.
    warnings: bool | None = None


_decode = msgspec.json.Decoder(QueryBody)


def parse(body: bytes, use_case_id: str) -> EventQuery:
    """The body as the stores' query (`use_case_id`: the body's, resolved to an id); one more event
    than the page is asked for, which says whether there is a next page."""
    q = decode(_decode, body)
    types = ([q.eventType] if q.eventType is not None else []) + q.eventTypes
    for name in types:
        if name not in EVENT_TYPES:
            raise InvalidRequest(f"eventType: unknown event type {name!r}; one of {', '.join(EVENT_TYPES)}")
    start = naive_utc(parse_time(q.startTime, "startTime")) if q.startTime is not None else None
    end = naive_utc(parse_time(q.endTime, "endTime")) if q.endTime is not None else None
    if start is not None and end is not None and end < start:
        raise InvalidRequest("endTime is before startTime")
    contexts = tuple(ContextTerm(column, term.operator == "eq", term.value)
                     for key, column in _CONTEXTS.items() if (term := getattr(q, key)) is not None)
    meta: list[MetaTerm] = [typed_term(f.field, f.operator, f.value, f.type) for f in q.customMetadataFilters]
    meta += [typed_term(DATA_PREFIX + f.column, f.operator, f.value) for f in q.eventFieldFilters]
    after = read_cursor(q.cursor) if q.cursor else None
    detection = (Filters(classes=tuple(q.detection.classes), min_confidence=q.detection.minConfidence)
                 if q.detection is not None else None)
    return EventQuery(use_case_id, q.limit + 1, tuple(dict.fromkeys(types)), start, end, contexts, tuple(meta),
                      detection=detection, feedback=tuple(dict.fromkeys(q.feedback)), warnings=q.warnings,
                      after=after)


def use_case_of(body: bytes) -> str:
    """The body's `useCaseId`, before anything else is looked at (it is resolved first)."""
    return decode(_decode, body).useCaseId


def make_cursor(ts_us: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ts_us}:{event_id}".encode()).decode()


def read_cursor(cursor: str) -> tuple[int, str]:
    try:
        ts, sep, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if not sep or not event_id:
            raise ValueError(cursor)
        return int(ts), event_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor: not a cursor this server gave (copy `nextCursor` as it came)") from None
