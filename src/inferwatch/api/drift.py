"""Drift of a model (optionally a slice of it): a current window against a reference window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request

from inferwatch import drift
from inferwatch.api.common import JSON, runtime, whole_number
from inferwatch.auth import Reader
from inferwatch.errors import InvalidRequest
from inferwatch.query.filters import parse_filters, parse_time
from inferwatch.store.rows import iso

router = APIRouter(prefix="/api/v1/{workspace}")

DEFAULT_CURRENT = timedelta(hours=24)
DEFAULT_LIMIT = 5000
MAX_LIMIT = 50_000
_DURATION = re.compile(r"^(\d{1,9})([smhd])$")
# A window longer than this reaches before any timestamp either store holds.
MAX_DURATION = timedelta(days=100 * 366)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, name: str) -> timedelta:
    """`90s`, `30m`, `6h`, `7d`."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidRequest(f"{name}: expected a duration such as 30m, 6h or 7d, or FROM/TO")
    span = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if span > MAX_DURATION:
        raise InvalidRequest(f"{name}: at most {MAX_DURATION.days} days")
    return span


def _span(text: str, name: str) -> tuple[datetime, datetime]:
    start_text, _, end_text = text.partition("/")
    start, end = parse_time(start_text, name), parse_time(end_text, name)
    if end <= start:
        raise InvalidRequest(f"{name}: the end must be after the start")
    return start, end


def windows(current: str | None, reference: str | None, now: datetime
            ) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """(current, reference) as [start, end) pairs.

    current: a duration ending now (default 24h) or `FROM/TO`. reference: `previous` (default:
    as long as the current window, right before it), a duration ending where the current window
    starts (a rolling reference), or `FROM/TO` (a fixed past period)."""
    if current and "/" in current:
        cur = _span(current, "current")
    else:
        span = parse_duration(current, "current") if current else DEFAULT_CURRENT
        cur = (now - span, now)
    if not reference or reference == "previous":
        ref = (cur[0] - (cur[1] - cur[0]), cur[0])
    elif "/" in reference:
        ref = _span(reference, "reference")
    else:
        ref = (cur[0] - parse_duration(reference, "reference"), cur[0])
    return cur, ref


@router.get("/drift", summary="Drift of a model: current window against a reference window, per feature")
def get_drift(who: Reader, request: Request) -> JSON:
    """`model_id` (one) is required; `current` and `reference` choose the windows; any other
    filter of the inference list (device, tag, `meta.<field>=`) narrows both to a slice.
    Metadata fields sent as numbers are features too (`meta.<field>`). Each window is read as
    its newest `limit` inferences (default 5,000)."""
    params = request.query_params
    filters = parse_filters(params.multi_items(), extra_keys=("current", "reference", "limit"))
    if len(filters.model_ids) != 1:
        raise InvalidRequest("name exactly one model_id: drift is a model's")
    if filters.start is not None or filters.end is not None:
        raise InvalidRequest("choose the windows with current= and reference=, not from/to")
    limit = whole_number(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT)
    cur, ref = windows(params.get("current"), params.get("reference"), datetime.now(UTC))
    store = runtime(request).store
    # numbers=None: every metadata field sent as a number is a feature (`meta.<field>`).
    current_rows = store.drift_sample(who.ws.id, filters.with_range(*cur), limit, numbers=None)
    reference_rows = store.drift_sample(who.ws.id, filters.with_range(*ref), limit, numbers=None)
    answer = drift.compare(reference_rows, current_rows)
    answer.update(model_id=filters.model_ids[0],
                  current={"from": iso(cur[0]), "to": iso(cur[1])},
                  reference={"from": iso(ref[0]), "to": iso(ref[1])}, limit=limit)
    return JSON(answer)
