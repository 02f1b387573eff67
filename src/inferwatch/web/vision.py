"""The dashboard's Vision Events pages: the use cases, a use case's events (newest first, every
filter of the query in the URL, a page at a time), one event with its images, data, metadata and
feedback history, and the feedback form (docs/vision-events.md).

Unlike the other pages these are rendered whole on the server from the store: an event is its
stored body, and the query is the one the API runs (`EventQuery`), so what a page lists is what
`POST /vision-events/query` answers for the same filters. Only the images' annotations are drawn
by a script (`annotate.js`, as the inference page draws its boxes), from data attributes; every
value a user sent reaches the page through autoescaped templates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from inferwatch.api.common import runtime
from inferwatch.api.use_cases import resolve
from inferwatch.api.vision_events import write_events
from inferwatch.auth import Form, Scope, csrf_form
from inferwatch.errors import InvalidRequest
from inferwatch.ingest import vision_events
from inferwatch.query import events as event_query
from inferwatch.query.filters import OPERATORS, Filters, parse_filters, parse_time
from inferwatch.query.performance import FEEDBACK_FIELD, VERDICTS
from inferwatch.store.base import ImageRecord, Store
from inferwatch.store.events import ACTIVE, NO_FEEDBACK, ContextTerm, EventQuery, EventRecord, UseCaseRecord
from inferwatch.store.rows import iso, naive_utc, to_us
from inferwatch.web.pages import Viewer, _page
from inferwatch.workspaces import Principal

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
CONTEXTS = ("deviceId", "streamId", "workflowId", "externalId")
DATA_PARAM = "data."  # `data.<column>[op]=value`: an eventData field, as `eventFieldFilters` has it
FEEDBACK_CHOICES = (*VERDICTS, NO_FEEDBACK)
# `warnings=yes`: only events stored with ingestion warnings; `no`: only those without.
WARNINGS_CHOICES = {"yes": True, "no": False}
# Parameters of the events page that are not filters.
_PAGING = ("cursor",)
_ADDING = ("add_kind", "add_field", "add_op", "add_value")


# -- what the templates show ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Picture:
    """One image of an event: its URL and the annotations to draw over it, as the inference
    page's script takes them ({"image": {width, height}, "predictions": [...]}, JSON)."""

    role: str  # output, input
    url: str
    annotations: str
    boxes: int


@dataclass(slots=True)
class EventView:
    event_id: str
    event_type: str
    ts: str
    received_at: str
    body: dict[str, Any]
    verdict: str | None
    pictures: list[Picture] = field(default_factory=list)
    warnings: tuple[str, ...] = ()  # its ingestion warnings

    @property
    def data(self) -> dict[str, Any]:
        found: dict[str, Any] = self.body.get("eventData") or {}
        return found

    @property
    def metadata(self) -> dict[str, Any]:
        found: dict[str, Any] = self.body.get("customMetadata") or {}
        return found

    @property
    def thumbnail(self) -> Picture | None:
        """The image the event shows (`displayImagePosition`'s output image, else any)."""
        return next((p for p in self.pictures if p.role == "output"), self.pictures[0] if self.pictures else None)


def _predictions(image: dict[str, Any]) -> list[dict[str, Any]]:
    """An event image's annotations in the inference's prediction shape (points as {x, y})."""
    out: list[dict[str, Any]] = []
    for box in image.get("objectDetections") or []:
        out.append(dict(box))
    for seg in image.get("instanceSegmentations") or []:
        out.append({**seg, "points": [{"x": x, "y": y} for x, y in seg.get("points") or []]})
    for kp in image.get("keypoints") or []:
        out.append({**kp, "keypoints": [{"x": k["x"], "y": k["y"], "class_name": str(k.get("id", ""))}
                                        for k in kp.get("keypoints") or []]})
    return out


def _view(store: Store, ws: int, slug: str, record: EventRecord, verdict: str | None,
          sizes: dict[str, ImageRecord | None] | None = None) -> EventView:
    """An event as the pages show it; `sizes` keeps the uploads looked up across a page's events
    (a line's events often show the same few images)."""
    sizes = {} if sizes is None else sizes
    body: dict[str, Any] = msgspec.json.decode(record.body)
    view = EventView(record.event_id, str(body.get("eventType", record.event_type)), iso(record.ts),
                     iso(record.received_at), body, verdict, warnings=record.warnings)
    images = body.get("images") or []
    position = body.get("displayImagePosition")
    # The one `shown_source` shows: a position naming no image shows the first, as its warning says.
    shown = vision_events.shown_index(position if isinstance(position, int) else None, len(images))
    order = sorted(range(len(images)), key=lambda i: i != shown)  # the displayed one first
    for index in order:
        image = images[index]
        predictions = _predictions(image)
        for role, key in (("output", "sourceId"), ("input", "inputSourceId")):
            source = image.get(key)
            if not source:
                continue
            if source not in sizes:
                sizes[source] = store.image(ws, source)
            record_ = sizes[source]
            if record_ is None:
                continue
            size = {"width": record_.width, "height": record_.height}
            view.pictures.append(Picture(role, f"/api/v1/{slug}/images/{source}",
                                         msgspec.json.encode({"image": size, "predictions": predictions}).decode(),
                                         len(predictions)))
    return view


def _verdicts(store: Store, ws: int, ids: list[str]) -> dict[str, str]:
    found = store.metadata_of(ws, ids)
    return {i: str(fields[FEEDBACK_FIELD]) for i, fields in found.items() if FEEDBACK_FIELD in fields}


# -- use cases ----------------------------------------------------------------------------------------

@router.get("/use-cases")
def use_cases_page(request: Request, who: Viewer) -> Response:
    """Every use case with its events, last event and event types; archived ones with `?archived=1`."""
    if who is None:
        return _page(request, who, "use_cases", "Use cases")
    store = runtime(request).store
    archived = request.query_params.get("archived") == "1"
    figures = store.use_case_figures(who.ws.id)
    cases = [c for c in store.use_cases(who.ws.id) if archived or c.status == ACTIVE]
    rows = [(c, figures.get(c.id)) for c in cases]
    rows.sort(key=lambda r: (r[0].status != ACTIVE, -(to_us(r[1].last_event_at) if r[1] and r[1].last_event_at
                                                       else 0), r[0].name))
    hidden = sum(1 for c in store.use_cases(who.ws.id) if c.status != ACTIVE)
    return _page(request, who, "use_cases", "Use cases", rows=rows, archived=archived, hidden=hidden)


# -- a use case's events ----------------------------------------------------------------------------

def _filters(use_case: UseCaseRecord, params: QueryParams) -> tuple[EventQuery, list[tuple[str, str]]]:
    """The page's URL as the store's query (the API's filters, under query-string names), and
    the terms it holds as (key, value) for the chips."""
    known = {"type", "from", "to", "feedback", "class", "min_confidence", "warnings", "archived", *CONTEXTS, *_PAGING,
             *_ADDING}
    terms: list[tuple[str, str]] = []
    meta_params: list[tuple[str, str]] = []
    contexts: list[ContextTerm] = []
    for key, value in params.multi_items():
        if key.startswith("meta.") or key.startswith(DATA_PARAM):
            name = key if key.startswith("meta.") else "meta." + vision_events.DATA_PREFIX + key[len(DATA_PARAM):]
            meta_params.append((name, value))
            terms.append((key, value))
            continue
        base, _, op = key.partition("[")
        if base in CONTEXTS and op in ("", "neq]"):
            if not value:
                continue
            column = event_query.CONTEXT_COLUMNS[base]
            contexts.append(ContextTerm(column, op == "", value))
            terms.append((key, value))
            continue
        if key not in known:
            raise InvalidRequest(f"unknown filter {key!r}")
        if key in ("type", "feedback", "class", "warnings") and value:
            terms.append((key, value))
    types = tuple(dict.fromkeys(t for t in params.getlist("type") if t))
    for name in types:
        if name not in vision_events.EVENT_TYPES:
            raise InvalidRequest(f"type: unknown event type {name!r}")
    feedback = tuple(dict.fromkeys(v for v in params.getlist("feedback") if v))
    for verdict in feedback:
        if verdict not in FEEDBACK_CHOICES:
            raise InvalidRequest(f"feedback: one of {', '.join(FEEDBACK_CHOICES)}, got {verdict!r}")
    start = naive_utc(parse_time(params["from"], "from")) if params.get("from") else None
    end = naive_utc(parse_time(params["to"], "to")) if params.get("to") else None
    for key in ("from", "to"):
        if params.get(key):
            terms.append((key, params[key]))
    meta = parse_filters(meta_params).meta
    classes = tuple(c for c in params.getlist("class") if c)
    floor = params.get("min_confidence") or None
    detection = None
    if classes or floor:
        detection = parse_filters([("class", c) for c in classes] + ([("min_confidence", floor)] if floor else []))
        detection = Filters(classes=detection.classes, min_confidence=detection.min_confidence)
        if floor:
            terms.append(("min_confidence", floor))
    warned = params.get("warnings") or None
    if warned is not None and warned not in WARNINGS_CHOICES:
        raise InvalidRequest(f"warnings: yes (only events with ingestion warnings) or no, got {warned!r}")
    cursor = params.get("cursor")
    after = event_query.read_cursor(cursor) if cursor else None
    return EventQuery(use_case.id, PAGE_SIZE + 1, types, start, end, tuple(contexts), meta, detection=detection,
                      feedback=feedback, warnings=None if warned is None else WARNINGS_CHOICES[warned],
                      after=after), terms


def _added(params: QueryParams) -> str | None:
    """The URL with the "add a term" inputs made one `meta.<field>[op]` (or `data.`) term, or None
    when the form added none."""
    name = (params.get("add_field") or "").strip()
    if not name:
        return None
    op = params.get("add_op") or "eq"
    if op not in OPERATORS:
        raise InvalidRequest(f"add_op: one of {', '.join(OPERATORS)}")
    prefix = DATA_PARAM if params.get("add_kind") == "data" else "meta."
    key = prefix + name + ("" if op == "eq" else f"[{op}]")
    items = [(k, v) for k, v in params.multi_items() if k not in (*_ADDING, *_PAGING)]
    items.append((key, params.get("add_value") or ""))
    return "?" + urlencode(items)


def _use_case(store: Store, who: Principal, ref: str) -> UseCaseRecord | None:
    return resolve(store, who.ws.id, ref)


@router.get("/use-cases/{use_case_id}")
def events_page(use_case_id: str, request: Request, who: Viewer) -> Response:
    if who is None:
        return _page(request, who, "events", "Events")
    store = runtime(request).store
    case = _use_case(store, who, use_case_id)
    if case is None:
        return _page(request, who, "events", "Events", case=None, error="No such use case in this workspace.",
                     events=[], terms=[], older=None, status=404)
    params = request.query_params
    try:
        added = _added(params)
        if added is not None:
            return RedirectResponse(request.url.path + added, status_code=303)
        query, terms = _filters(case, params)
        found = store.query_events(who.ws.id, query)
    except InvalidRequest as exc:
        return _page(request, who, "events", case.name, case=case, error=str(exc.detail), events=[], terms=[],
                     older=None, status=400)
    page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    verdicts = _verdicts(store, who.ws.id, [e.event_id for e in page])
    sizes: dict[str, ImageRecord | None] = {}
    events = [_view(store, who.ws.id, who.ws.slug, e, verdicts.get(e.event_id), sizes) for e in page]
    older = None
    if more and page:
        cursor = event_query.make_cursor(to_us(page[-1].ts), page[-1].event_id)
        older = "?" + urlencode([(k, v) for k, v in params.multi_items() if k != "cursor"] + [("cursor", cursor)])
    return _page(request, who, "events", case.name, case=case, error=None, events=events, terms=terms, older=older,
                 event_types=vision_events.EVENT_TYPES, feedback_choices=FEEDBACK_CHOICES, operators=OPERATORS,
                 contexts=CONTEXTS)


# -- one event, and its feedback ------------------------------------------------------------------

def _event_page(request: Request, who: Principal, case: UseCaseRecord, event_id: str, error: str | None = None,
                status: int = 200) -> Response:
    store = runtime(request).store
    found = [e for e in store.find_events(who.ws.id, [event_id]) if e.use_case_id == case.id]
    if not found:
        return _page(request, who, "event", "Event", case=case, event=None, history=[], error=None,
                     can_review=False, status=404)
    verdict = _verdicts(store, who.ws.id, [event_id]).get(event_id)
    view = _view(store, who.ws.id, who.ws.slug, found[0], verdict)
    history = [msgspec.json.decode(e.body) | {"receivedAt": iso(e.received_at)}
               for e in store.feedback_of(who.ws.id, event_id)]
    # A review links to the event it reviews, in whichever use case that one is.
    related = view.data.get("relatedEventId") if view.event_type == vision_events.FEEDBACK else None
    reviewed = store.find_events(who.ws.id, [related]) if isinstance(related, str) else []
    return _page(request, who, "event", f"Event {event_id}", case=case, event=view, history=history, error=error,
                 reviewed=reviewed[0] if reviewed else None,
                 can_review=who.can(Scope.INGEST), verdicts=VERDICTS, status=status)


@router.get("/use-cases/{use_case_id}/events/{event_id:path}")
def event_page(use_case_id: str, event_id: str, request: Request, who: Viewer) -> Response:
    if who is None:
        return _page(request, who, "event", "Event")
    case = _use_case(runtime(request).store, who, use_case_id)
    if case is None:
        return _page(request, who, "event", "Event", case=None, event=None, history=[], error=None,
                     can_review=False, status=404)
    return _event_page(request, who, case, event_id)


ReviewForm = Annotated[Form, Depends(csrf_form(Scope.INGEST, max_fields=8))]


@router.post("/use-cases/{use_case_id}/feedback")
async def give_feedback(use_case_id: str, request: Request, form: ReviewForm) -> Response:
    """An operator_feedback event, written as the API writes one (so checked alike), naming the
    session's key as the reviewer; back to the event's page."""
    who = form.signed
    store = runtime(request).store
    case = _use_case(store, who, use_case_id)
    event_id, verdict, comment = (form.data.get(k) for k in ("event_id", "verdict", "comment"))
    if case is None or not isinstance(event_id, str) or not event_id:
        raise InvalidRequest("event_id: the form names no event of this use case")
    body: dict[str, Any] = {
        "eventId": f"feedback-{uuid.uuid4()}", "eventType": vision_events.FEEDBACK, "useCaseId": case.id,
        "timestamp": datetime.now(UTC).isoformat(),
        "eventData": {"relatedEventId": event_id, "feedback": verdict, "reviewer": who.key.name},
    }
    if isinstance(comment, str) and comment.strip():
        body["comment"] = comment.strip()
    try:
        if not [e for e in store.find_events(who.ws.id, [event_id]) if e.use_case_id == case.id]:
            raise InvalidRequest(f"eventData.relatedEventId: no event {event_id!r} in this use case")
        prepared = vision_events.decode_one(msgspec.json.encode(body), datetime.now(UTC))
        await write_events(request, who, [prepared])
    except InvalidRequest as exc:
        return await run_in_threadpool(_event_page, request, who, case, event_id, str(exc.detail), 400)
    return RedirectResponse(f"/use-cases/{case.id}/events/{event_id}", status_code=303)
