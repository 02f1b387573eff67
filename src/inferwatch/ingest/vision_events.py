"""Vision Events as sent (Roboflow's event body, docs/vision-events.md): validated while decoding,
then turned into the rows of the one store: the event's own row, an inference per image, and
metadata of the event id for its custom metadata and its own fields.

Every limit Roboflow documents is a 400 naming the field (msgspec names the path, `$.images[0]
.objectDetections`); a batch is checked whole before anything is written, so it is all or nothing.
What is not a limit but is not used as sent either (an unknown field, event data that does not fit
its type, a repaired display position) is stored and recorded as an ingestion warning
(`ingest/warnings.py`), so nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from inferwatch.errors import InvalidRequest
from inferwatch.ingest.fields import NO_NUL, ClassId, ClassName, Confidence, Coordinate
from inferwatch.ingest.metavalues import Kind, MetaScalar, kind_of, typed
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.ingest.warnings import event_warnings, strict_twin, unknown_fields
from inferwatch.query.filters import parse_time
from inferwatch.query.performance import FEEDBACK_FIELD, VERDICTS
from inferwatch.store.base import ImageRecord, Store
from inferwatch.store.events import EventRows, EventTables

FEEDBACK = "operator_feedback"
EVENT_TYPES = ("quality_check", "inventory_count", "safety_alert", "custom", FEEDBACK)
MAX_BATCH = 100
MAX_IMAGES = 16  # an event's images are inference image indices the detail page looks up directly
MAX_ANNOTATIONS = 1000
MAX_METADATA_KEYS = 100
MAX_VALUE_LEN = 1000
PAST = timedelta(days=365)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
FUTURE = timedelta(days=1)
SOURCE = "vision-events"
# Metadata fields inferwatch writes itself: a custom-metadata key holds no dot, so none collides.
PREFIX = "ve."
DATA_PREFIX = "ve.data."



def on_event_row(name: str) -> bool:
    """Whether a metadata field is one the event writes on its own row too (`EventRows.field_*`):
    a custom-metadata key (no dot in any) or an event-data field; `ve.feedback`, which a later
    review writes, and the other `ve.*` fields are not."""
    return "." not in name or name.startswith(DATA_PREFIX)


_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=_NO_CONTROL)]
MetaKey = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9_ -]+$")]
DataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=_NO_CONTROL)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_VALUE_LEN, pattern=NO_NUL)]
MetaValue = Text | int | float | bool
Metadata = Annotated[dict[MetaKey, MetaValue], msgspec.Meta(max_length=MAX_METADATA_KEYS)]


class Detection(msgspec.Struct):
    class_: ClassName = msgspec.field(name="class")
    x: Coordinate
    y: Coordinate
    width: Coordinate
    height: Coordinate
    confidence: Confidence


class Classification(msgspec.Struct):
    class_: ClassName = msgspec.field(name="class")
    confidence: Confidence


class Segmentation(Detection):
    points: Annotated[list[tuple[Coordinate, Coordinate]], msgspec.Meta(min_length=3, max_length=10_000)]


class KeypointPoint(msgspec.Struct):
    x: Coordinate
    y: Coordinate
    id: ClassId | None = None


class Keypoints(Detection):
    keypoints: Annotated[list[KeypointPoint], msgspec.Meta(max_length=MAX_ANNOTATIONS)]


def _capped(t: Any) -> Any:
    return Annotated[list[t], msgspec.Meta(max_length=MAX_ANNOTATIONS)]


class Image(msgspec.Struct):
    sourceId: Id | None = None
    inputSourceId: Id | None = None
    label: Id | None = None
    objectDetections: _capped(Detection) = []  # type: ignore[valid-type]
    classifications: _capped(Classification) = []  # type: ignore[valid-type]
    instanceSegmentations: _capped(Segmentation) = []  # type: ignore[valid-type]
    keypoints: _capped(Keypoints) = []  # type: ignore[valid-type]
    metadata: Metadata | None = None


class Event(msgspec.Struct):
    eventId: Id
    eventType: Literal["quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"]
    useCaseId: Id
    timestamp: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    eventData: Annotated[dict[DataKey, Any], msgspec.Meta(max_length=MAX_METADATA_KEYS)] | None = None
    deviceId: Id | None = None
    streamId: Id | None = None
    workflowId: Id | None = None
    images: Annotated[list[Image], msgspec.Meta(max_length=MAX_IMAGES)] = []
    customMetadata: Metadata | None = None
    displayImagePosition: Annotated[int, msgspec.Meta(ge=0, le=MAX_IMAGES)] | None = None
    comment: Text | None = None


class Batch(msgspec.Struct):
    events: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class BatchBody(msgspec.Struct):
    """The batch as the API reference shows it (`Batch` keeps each event's bytes, to echo)."""

    events: Annotated[list[Event], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_decode_event = msgspec.json.Decoder(Event)
# Tried first: the same checks, refusing unknown fields. A body it takes (every client's, as sent)
# costs one decode, as before; one it refuses for an unknown field is decoded again, leniently,
# and each unknown field becomes a warning.
_decode_strict = msgspec.json.Decoder(strict_twin(Event))
_decode_batch = msgspec.json.Decoder(Batch)
# The strict one for an event with no backslash and no DEL byte (every client's, as a rule):
# the same checks but the patterns that only keep control characters (or NUL) out of strings,
# which such an event meets already, as JSON carries a control character in a string only
# escaped. So it takes and refuses the same bodies with the same errors, where those patterns
# were half of the decoding time (a regular expression per id, class name and value).
_PLAIN = frozenset((_NO_CONTROL, NO_NUL))
_decode_plain = msgspec.json.Decoder(strict_twin(Event, _PLAIN))
_decode_plain_batch = msgspec.json.Decoder(strict_twin(BatchBody, _PLAIN))


@dataclass(slots=True)  # not frozen: a frozen one's construction costs three times as much
class Prepared:
    """A valid event, its body as sent (echoed by queries) and its time."""

    event: Event
    body: str
    ts_us: int
    warnings: tuple[str, ...] = ()  # what of the event is not used as sent (`ingest/warnings.py`)

    @property
    def verdict(self) -> tuple[str, str] | None:
        """(the reviewed event's id, `correct` | `incorrect` | `inconclusive`) of a feedback event."""
        if self.event.eventType != FEEDBACK or self.event.eventData is None:
            return None
        return str(self.event.eventData["relatedEventId"]), str(self.event.eventData["feedback"])

    def source_ids(self) -> set[str]:
        return {i for image in self.event.images for i in (image.sourceId, image.inputSourceId) if i}


def decode_one(body: bytes, now: datetime, where: str = "") -> Prepared:
    """One event, checked; a 400 naming the field (after `where`, a batch's `events[i]`)."""
    event, unknown = _decode_event_body(body, where)
    return _checked(event, body, (now - PAST, now + FUTURE), where, unknown)


def _checked(event: Event, body: bytes, bounds: tuple[datetime, datetime], where: str, unknown: Sequence[str]
             ) -> Prepared:
    """A decoded event past the checks its decoder cannot make: its time (within `bounds`), its
    event data, the event it reviews."""
    at = parse_time(event.timestamp, f"{where}timestamp")
    if not bounds[0] <= at <= bounds[1]:
        raise InvalidRequest(f"{where}timestamp: must lie between one year ago and tomorrow, got {event.timestamp!r}")
    if event.eventData:
        for key, value in event.eventData.items():
            if isinstance(value, str) and len(value) > MAX_VALUE_LEN:
                raise InvalidRequest(f"{where}eventData.{key}: longer than {MAX_VALUE_LEN} characters")
    if event.eventType == FEEDBACK:
        _check_feedback(event, where)
    return Prepared(event, body.decode(), (at - _EPOCH) // _MICROSECOND, event_warnings(event, unknown))


def _decode_event_body(body: bytes, where: str) -> tuple[Event, Sequence[str]]:
    """The event and the unknown fields it names (each a warning), or the 400."""
    strict = _decode_plain if b"\\" not in body and b"\x7f" not in body else _decode_strict
    try:
        return strict.decode(body), ()
    except msgspec.DecodeError as exc:
        if not str(exc).startswith("Object contains unknown field"):
            raise InvalidRequest(f"{where}{exc}") from None
    try:
        event = _decode_event.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"{where}{exc}") from None
    return event, unknown_fields(msgspec.json.decode(body), Event)


def _check_feedback(event: Event, where: str) -> None:
    """An `operator_feedback` event names the event it reviews and one of the three verdicts; that
    the reviewed event exists is the caller's to check (it needs the store)."""
    data = event.eventData or {}
    related = data.get("relatedEventId")
    if not isinstance(related, str) or not 1 <= len(related) <= 256 or any(ord(c) < 0x20 for c in related):
        raise InvalidRequest(f"{where}eventData.relatedEventId: an operator_feedback event names the eventId it"
                             " reviews (1 to 256 characters)")
    if related == event.eventId:
        raise InvalidRequest(f"{where}eventData.relatedEventId: an event cannot review itself")
    if data.get("feedback") not in VERDICTS:
        raise InvalidRequest(f"{where}eventData.feedback: one of {', '.join(VERDICTS)}, got {data.get('feedback')!r}")


def _decode_whole(body: bytes) -> list[Event] | None:
    """A batch's events in one decoding, when it holds no backslash or DEL byte and every event
    passes the strict checks (every client's batch, as a rule): the events `decode_one` would
    decode one by one, without a call and a copy of each. Anything else is None, and the events
    are decoded one by one: a refusal names the field exactly as for one event, and an unknown
    field becomes a warning."""
    if b"\\" in body or b"\x7f" in body:
        return None
    try:
        return _decode_plain_batch.decode(body).events
    except msgspec.DecodeError:
        return None


def decode_batch(body: bytes, now: datetime) -> list[Prepared]:
    try:
        batch = _decode_batch.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"{exc}; a batch is {{\"events\": [...]}} of 1 to {MAX_BATCH} events") from None
    events = _decode_whole(body)
    if events is None:
        prepared = [decode_one(bytes(raw), now, f"events[{i}].") for i, raw in enumerate(batch.events)]
    else:
        bounds = (now - PAST, now + FUTURE)
        prepared = [_checked(event, bytes(raw), bounds, f"events[{i}].", ())
                    for i, (event, raw) in enumerate(zip(events, batch.events, strict=True))]
    last = {p.event.eventId: i for i, p in enumerate(prepared)}
    if len(last) == len(prepared):
        return prepared
    # A batch naming an id twice stores its last version (`write_events`); that one says so.
    sent = Counter(p.event.eventId for p in prepared)
    return [replace(p, warnings=(*p.warnings, f"eventId: sent {sent[p.event.eventId]} times in this batch;"
                                 " this, the last, is stored"))
            if sent[p.event.eventId] > 1 and last[p.event.eventId] == i else p for i, p in enumerate(prepared)]


@dataclass(frozen=True, slots=True)
class Size:
    width: int | None
    height: int | None


def to_rows(events: list[tuple[Prepared, str]], ws: int, sizes: dict[str, Size], now_us: int
            ) -> tuple[InferenceRows, MetadataRows, EventRows]:
    """The rows of valid events, each with its resolved use-case id; `sizes` are the uploaded
    images the events name (every one of them: the caller refused an unknown id).

    Built a column at a time over the batch (a comprehension per column), and the metadata and
    image rows as tuples turned into columns once: a method call and a list append per value
    and event were a fifth of the server's time under load."""
    n = len(events)
    prepared = [p for p, _ in events]
    sent = [p.event for p in prepared]
    datas = [e.eventData or _NONE for e in sent]
    # Each value typed once a call, a cache per type (`1 == 1.0 == True`, each typed apart): a
    # batch's events repeat their use case, type and many values.
    known: dict[type, dict[MetaScalar, tuple[str, Kind, float | None]]] = {str: {}, int: {}, float: {}, bool: {}}
    strings = known[str]
    # The schema entries of a set of custom keys with their values' types, once a call: a batch's
    # events mostly send the same keys.
    schemas: dict[tuple[object, ...], list[str]] = {}
    # Metadata rows without their workspace and time, the same for all.
    meta: list[tuple[str, str, str, Kind, float | None]] = []
    field_names, field_values, number_names, number_values, meta_types = [], [], [], [], []
    for prepared_one, (_, use_case), data in zip(prepared, events, datas, strict=True):
        event = prepared_one.event
        event_id, custom = event.eventId, event.customMetadata or _NONE
        fields: dict[str, MetaScalar] = dict(custom)
        for key, value in data.items():
            if isinstance(value, str | int | float | bool):
                fields[DATA_PREFIX + key] = value
        names, texts, number_keys, numbers = [], [], [], []
        for name, value in fields.items():
            if value != "":
                cache = known[value.__class__]
                found = cache.get(value)
                if found is None:
                    found = cache[value] = typed(value)
                text, kind, number = found
                meta.append((event_id, name, text, kind, number))
                names.append(name)
                texts.append(text)
                if number is not None:
                    number_keys.append(name)
                    numbers.append(number)
        field_names.append(names)
        field_values.append(texts)
        number_names.append(number_keys)
        number_values.append(numbers)
        signature = (*custom, *map(type, custom.values()))
        schema = schemas.get(signature)
        if schema is None:
            schema = schemas[signature] = _types(custom)
        meta_types.append(schema)
        for name, value in ((_USE_CASE, use_case), (_EVENT_TYPE, event.eventType),
                            (_STREAM, event.streamId), (_WORKFLOW, event.workflowId)):
            if value is not None:
                found = strings.get(value)
                if found is None:
                    found = strings[value] = typed(value)
                meta.append((event_id, name, *found))
        if event.eventType == FEEDBACK and (verdict := prepared_one.verdict) is not None:
            # The reviewed event's latest verdict, on its id (so on its images' inferences): the
            # feedback filter, and measured accuracy without a ground-truth setting.
            meta.append((verdict[0], FEEDBACK_FIELD, *typed(verdict[1])))
    out = EventRows(
        ws=[ws] * n,
        event_id=[e.eventId for e in sent],
        use_case_id=[c for _, c in events],
        event_type=[e.eventType for e in sent],
        ts_us=[p.ts_us for p in prepared],
        received_us=[now_us] * n,
        device_id=[e.deviceId for e in sent],
        stream_id=[e.streamId for e in sent],
        workflow_id=[e.workflowId for e in sent],
        external_id=[None if (x := d.get("externalId")) is None else str(x) for d in datas],
        n_images=[len(e.images) for e in sent],
        meta_types=meta_types,
        image_meta_types=[_image_types(e.images) for e in sent],
        body=[p.body for p in prepared],
        warnings=[list(p.warnings) for p in prepared],
        field_names=field_names,
        field_values=field_values,
        number_names=number_names,
        number_values=number_values,
    )
    return _image_rows(prepared, [c for _, c in events], ws, sizes, now_us), _metadata_rows(meta, ws, now_us), out


_NONE: dict[str, Any] = {}
_USE_CASE, _EVENT_TYPE, _STREAM, _WORKFLOW = (PREFIX + f for f in ("use_case", "event_type", "stream", "workflow"))


def _metadata_rows(rows: list[tuple[str, str, str, Kind, float | None]], ws: int, now_us: int) -> MetadataRows:
    if not rows:
        return MetadataRows()
    ids, names, texts, kinds, numbers = (list(c) for c in zip(*rows, strict=True))
    return MetadataRows(ws=[ws] * len(ids), inference_id=ids, field_name=names, field_value=texts, field_type=kinds,
                        field_number=numbers, updated_us=[now_us] * len(ids))


def _image_rows(prepared: list[Prepared], use_cases: list[str], ws: int, sizes: dict[str, Size],
                now_us: int) -> InferenceRows:
    """An inference per image of each event, its annotations as predictions."""
    images: list[tuple[str, int, int, str, str, str | None, int | None, int | None, str | None]] = []
    counts: list[int] = []
    predictions: list[Detection | Classification] = []
    models: dict[tuple[str | None, str], str] = {}
    # The `extra` of an image without classifications: its ids only, and a batch's images mostly
    # name the same few.
    extras: dict[tuple[str | None, str | None, str | None], str | None] = {}
    unknown = Size(None, None)
    top_picked = shaped = False  # any classification among the predictions; any points
    for p, use_case in zip(prepared, use_cases, strict=True):
        event = p.event
        if not event.images:
            continue
        model = models.get((event.workflowId, use_case))
        if model is None:
            model = models[(event.workflowId, use_case)] = event.workflowId or f"{SOURCE}/{use_case}"
        for index, image in enumerate(event.images):
            if image.instanceSegmentations or image.keypoints or image.classifications:
                task, extra = _predictions(image, predictions, counts)
                shaped = shaped or bool(image.instanceSegmentations or image.keypoints)
                top_picked = top_picked or task == "classification"
                text = _json(extra)
            else:  # boxes, or nothing (the common case): the extra names the image's ids only
                task = "object-detection"
                counts.append(len(image.objectDetections))
                predictions += image.objectDetections
                refs = (image.sourceId, image.inputSourceId, image.label)
                if refs not in extras:
                    extras[refs] = _json(_extra(image))
                text = extras[refs]
            size = sizes.get(image.sourceId or image.inputSourceId or "", unknown)
            images.append((event.eventId, index, p.ts_us, model, task, event.deviceId, size.width, size.height, text))
    rows = InferenceRows()
    if not images:
        return rows
    m = len(images)
    ids, indices, ts, model_ids, tasks, devices, widths, heights, extras_ = (list(c) for c in zip(*images, strict=True))
    rows.ws, rows.inference_id, rows.image_index, rows.ts_us = [ws] * m, ids, indices, ts
    rows.received_us, rows.model_id, rows.task, rows.device_id = [now_us] * m, model_ids, tasks, devices
    rows.tags, rows.source, rows.inference_time = [[] for _ in ids], [SOURCE] * m, [None] * m
    rows.image_width, rows.image_height, rows.extra = widths, heights, extras_
    rows.n_predictions = counts
    k = len(predictions)
    rows.p_class = [b.class_ for b in predictions]
    rows.p_class_id = [None] * k
    rows.p_confidence = [b.confidence for b in predictions]
    rows.p_detection_id = [None] * k
    if top_picked:  # a classification has no geometry
        boxes: list[Detection | None] = [b if isinstance(b, Detection) else None for b in predictions]
        rows.p_x, rows.p_y = [None if b is None else b.x for b in boxes], [None if b is None else b.y for b in boxes]
        rows.p_width = [None if b is None else b.width for b in boxes]
        rows.p_height = [None if b is None else b.height for b in boxes]
    else:
        rows.p_x, rows.p_y = [b.x for b in predictions], [b.y for b in predictions]  # type: ignore[union-attr]
        rows.p_width = [b.width for b in predictions]  # type: ignore[union-attr]
        rows.p_height = [b.height for b in predictions]  # type: ignore[union-attr]
    if not shaped:  # no points (the common case)
        rows.p_points, rows.p_keypoints = [None] * k, [None] * k
        return rows
    rows.p_points = [msgspec.json.encode([{"x": x, "y": y} for x, y in b.points]).decode()
                     if isinstance(b, Segmentation) else None for b in predictions]
    rows.p_keypoints = [msgspec.json.encode([{"x": q.x, "y": q.y, "class_id": q.id} for q in b.keypoints]).decode()
                        if isinstance(b, Keypoints) else None for b in predictions]
    return rows


def shown_source(event: Event) -> str | None:
    """The uploaded image the event shows (`displayImagePosition`, else its first, as when the
    position names no image: a warning says so): its output image, else its input image."""
    if not event.images:
        return None
    image = event.images[shown_index(event.displayImagePosition, len(event.images))]
    return image.sourceId or image.inputSourceId


def image_refs(image: dict[str, Any], fields: dict[str, str], where: str,
               resolve: Callable[[str, Any], str]) -> dict[str, Any]:
    """A copy of a client's `image` with each of its image fields (`fields`: the client's name, then
    the id field that stands for it in a Vision Event, e.g. a bundle's `file` for `sourceId`)
    replaced by the id `resolve(path, value)` gives; an image naming both is a 400."""
    image = dict(image)
    for field, id_field in fields.items():
        if field in image:
            if id_field in image:
                raise InvalidRequest(f"{where} names both {field} and {id_field}")
            image[id_field] = resolve(f"{where}.{field}", image.pop(field))
    return image


def shown_index(position: int | None, images: int) -> int:
    """The index of the image an event shows: its `displayImagePosition`, or the first image when
    it names none or one past the event's images (the dashboard shows the same)."""
    return position if position is not None and position < images else 0


def written_fields(body: str) -> list[str]:
    """The metadata fields a stored event body wrote (`to_rows`), read without today's checks:
    what a re-sent version deletes before it writes its own."""
    event = msgspec.json.decode(body)
    if not isinstance(event, dict):
        return []
    custom, data = event.get("customMetadata"), event.get("eventData")
    names = [PREFIX + "use_case", PREFIX + "event_type", PREFIX + "stream", PREFIX + "workflow"]
    names += list(custom) if isinstance(custom, dict) else []
    names += [DATA_PREFIX + k for k, v in data.items() if isinstance(v, str | int | float | bool)] \
        if isinstance(data, dict) else []
    return names


@dataclass(frozen=True, slots=True)
class Write:
    """One request's checked events as rows, the same as Arrow tables (`EventTables.of`, made by
    the request), and the images its events show (`insert_image`)."""

    ws: int
    rows: InferenceRows
    meta: MetadataRows
    events: EventRows
    bodies: dict[str, str]
    shown: list[ImageRecord]
    tables: EventTables


def write_merged(target: Store, parts: list[Write]) -> list[int]:
    """Writes requests' events (in the writer thread, `Writer.call_merged`): the parts of one
    workspace naming no event id in common are stored together, so several requests share one
    commit as appends do; each part's answer is how many of its inferences were new (for a
    shared write, all of its inferences when any was new, as the writer's group commit says)."""
    answers: list[int] = []
    start = 0
    while start < len(parts):
        end, ids = start + 1, set(parts[start].bodies)
        while end < len(parts) and parts[end].ws == parts[start].ws and ids.isdisjoint(parts[end].bodies):
            ids.update(parts[end].bodies)
            end += 1
        chunk = parts[start:end]
        new = store(target, chunk)
        answers += [new] if len(chunk) == 1 else [len(p.rows) if new else 0 for p in chunk]
        for p in chunk:
            for image in p.shown:
                target.insert_image(image)
        start = end
    return answers


def store(target: Store, parts: list[Write]) -> int:
    """Writes requests' events, of one workspace and no event id in common (in the writer
    thread); returns how many inferences were new. A re-sent event whose body changed replaces
    its inferences and its metadata: the old ones go first, since an inference is otherwise
    stored once whatever is sent again. One sent again unchanged (a retry) rewrites nothing.
    Events all new (the common case) are written by the store at once, from the requests'
    tables, without looking their ids up first, where it can."""
    new = target.add_new_events(EventTables.joined([p.tables for p in parts]))
    if new is not None:
        return new
    rows, meta, events, bodies = parts[0].rows, parts[0].meta, parts[0].events, parts[0].bodies
    if len(parts) > 1:
        rows, meta, events, bodies = InferenceRows(), MetadataRows(), EventRows(), {}
        for p in parts:
            rows.extend(p.rows)
            meta.extend(p.meta)
            events.extend(p.events)
            bodies.update(p.bodies)
    ws = parts[0].ws
    old = {i: b for i, b in target.event_bodies(ws, list(bodies)).items() if b != bodies[i]}
    target.forget_event_rows(ws, sorted(old), [(i, f) for i, b in sorted(old.items()) for f in written_fields(b)])
    new = target.append(rows, meta)
    target.put_events(events)
    return new


def _types(metadata: dict[str, MetaValue] | None) -> list[str]:
    return sorted(f"{kind_of(value)}:{key}" for key, value in (metadata or {}).items())


def _image_types(images: list[Image]) -> list[str]:
    """The "<kind>:<key>" of every image's metadata, once each, sorted (the image schema)."""
    return sorted({t for image in images if image.metadata for t in _types(image.metadata)})


def _predictions(image: Image, predictions: list[Detection | Classification], counts: list[int]
                 ) -> tuple[str, dict[str, Any]]:
    """Appends the image's annotations to `predictions` and their number to `counts`; returns
    its task and `extra`."""
    extra: dict[str, Any] = _extra(image)
    boxes: list[Detection] = [*image.objectDetections, *image.instanceSegmentations, *image.keypoints]
    if not boxes and image.classifications:
        top = max(image.classifications, key=lambda c: c.confidence)
        counts.append(1)
        predictions.append(top)
        extra["class_scores"] = {c.class_: c.confidence for c in image.classifications}
        return "classification", extra
    counts.append(len(boxes))
    predictions += boxes
    task = ("keypoint-detection" if image.keypoints else
            "instance-segmentation" if image.instanceSegmentations else "object-detection")
    return task, extra


def _json(extra: dict[str, Any]) -> str | None:
    """An inference's `extra` as stored: its JSON, or NULL for none."""
    return msgspec.json.encode(extra).decode() if extra else None


def _extra(image: Image) -> dict[str, Any]:
    """An image's inference `extra`: the ids it names."""
    return {k: v for k, v in (("source_id", image.sourceId), ("input_source_id", image.inputSourceId),
                              ("label", image.label)) if v is not None}
