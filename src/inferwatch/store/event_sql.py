"""The WHERE of a Vision Events query (`EventQuery`), in the words both stores share: each store
binds the values (its `Params`, a `Binder`) and gives the few words that differ, its metadata
table, its term on the event row's maps and its inference filter; each still reads on its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from inferwatch.ingest.vision_events import SOURCE, on_event_row
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.query.performance import FEEDBACK_FIELD
from inferwatch.store.events import NO_FEEDBACK, EventQuery
from inferwatch.store.rows import EPOCH
from inferwatch.store.terms import Binder, field_rows, meta_terms

P = TypeVar("P", bound=Binder)


def event_where(ws: int, query: EventQuery, p: P, *, metadata: str, field_terms: Callable[[MetaTerm, P], str],
                inferences: Callable[[int, Filters, P], str], lower: datetime | None = None,
                upper: datetime | None = None) -> str:
    """The conditions (without WHERE) on the `events` rows of `query`, within `lower` <= ts <
    `upper` where given (a window of DuckDB's newest-first descent). `metadata` is the metadata
    table as the store reads it, `field_terms` a term on the event row's maps (a custom-metadata
    or event-data field), `inferences` the store's `where` over inferences."""
    terms = [f"ws = {p.workspace(ws)}", f"use_case_id = {p.text(query.use_case_id)}"]
    if query.event_types:
        terms.append(f"event_type IN {p.texts(query.event_types)}")
    for op, bound in ((">=", query.start), ("<=", query.end), (">=", lower), ("<", upper)):
        if bound is not None:
            terms.append(f"ts {op} {p.time(bound)}")
    for term in query.contexts:
        value = p.text(term.value)
        terms.append(f"{term.column} = {value}" if term.equal else
                     f"({term.column} IS NULL OR {term.column} <> {value})")
    for meta in query.meta:
        terms.append(field_terms(meta, p) if on_event_row(meta.field) else
                     f"event_id IN ({field_rows(ws, meta.field, p, 'inference_id', metadata)}{meta_terms(meta, p)})")
    if query.detection is not None:
        # An event's images are inferences at the event's time: a window narrows them too.
        images = replace(query.detection, start=lower, end=upper)
        terms.append(f"event_id IN (SELECT inference_id FROM inferences WHERE {inferences(ws, images, p)}"
                     f" AND source = {p.text(SOURCE)})")
    if query.feedback:
        terms.append(_feedback(ws, query.feedback, p, metadata))
    if query.warnings is not None:
        terms.append("length(warnings) > 0" if query.warnings else "length(warnings) = 0")
    if query.after is not None:
        ts_us, event_id = query.after
        at = p.time(EPOCH + timedelta(microseconds=ts_us))
        terms.append(f"(ts < {at} OR (ts = {at} AND event_id < {p.text(event_id)}))")
    return " AND ".join(terms)


def _feedback(ws: int, verdicts: tuple[str, ...], p: Binder, metadata: str) -> str:
    """The event's latest verdict (metadata `ve.feedback` of its id) is one of `verdicts`, or it
    has none and NO_FEEDBACK is among them."""
    given = field_rows(ws, FEEDBACK_FIELD, p, "inference_id", metadata)
    either = []
    named = [v for v in verdicts if v != NO_FEEDBACK]
    if named:
        either.append(f"event_id IN ({given} AND field_value IN {p.texts(named)})")
    if NO_FEEDBACK in verdicts:
        either.append(f"event_id NOT IN ({given})")
    return "(" + " OR ".join(either) + ")"
