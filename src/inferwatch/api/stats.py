"""Aggregate figures and time series over the same filters as the inference list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Request

from inferwatch.api import numeric
from inferwatch.api.common import JSON, runtime
from inferwatch.auth import Reader, Window, window
from inferwatch.errors import InvalidRequest
from inferwatch.query.buckets import choose_bucket
from inferwatch.query.filters import Filters, meta_field
from inferwatch.store.base import GROUPS
from inferwatch.store.rows import iso

router = APIRouter(prefix="/api/v1/{workspace}")


@router.get("/stats", summary="Totals and a time series, optionally one series per group")
def stats(who: Reader, win: Annotated[Window, Depends(window("bucket", "group_by", numeric.OPTION))],
          request: Request) -> JSON:
    """`numeric=meta.<field>` adds the field's count, average, least and greatest to the window
    (`numeric`) and to every series point.

    `p50_inference_time` and `p95_inference_time` may come from the store's per-hour buckets of
    times: then within 1 % (relative) of the exact percentile (`quantile_cont`, linear between
    the two nearest times). Counts, sums and averages are exact."""
    params = request.query_params
    group_by = params.get("group_by") or None
    if group_by is not None and group_by not in GROUPS and meta_field(group_by) is None:
        raise InvalidRequest(f"group_by must be one of {', '.join(GROUPS)} or meta.<field>")
    field = numeric.field_of(params, group_by)
    bucket_name, bucket = choose_bucket(params.get("bucket"), win.end - win.start)
    store = runtime(request).store
    totals, points = store.totals_and_series(who.ws.id, win.filters, bucket, group_by)
    series = [msgspec.structs.asdict(p) | {"time": iso(p.time)} for p in points]
    answer: dict[str, Any] = {
        "from": iso(win.start),
        "to": iso(win.end),
        "bucket": bucket_name,
        "group_by": group_by,
        "totals": totals,
        "series": series,
    }
    if field is not None:
        figures = numeric.NumericAnswer(store, who.ws.id, win.filters, field, group_by, bucket)
        answer["numeric"] = figures.header()
        for out, point in zip(series, points, strict=True):
            out["numeric"] = figures.at(point.time, point.group)
    return JSON(answer)


@router.get("/devices", summary="Every device: facts, last seen, online or not, inferences in the period")
def devices(who: Reader, win: Annotated[Window, Depends(window("silence_s"))], request: Request) -> JSON:
    params = request.query_params
    if win.filters != Filters(start=win.start, end=win.end):
        raise InvalidRequest("devices take only from, to and silence_s")
    rt = runtime(request)
    silence_s = rt.settings.device_offline_after_s
    if params.get("silence_s"):
        try:
            silence_s = float(params["silence_s"])
        except ValueError:
            raise InvalidRequest("silence_s must be a number of seconds") from None
        if not 0 < silence_s < 1e9:
            raise InvalidRequest("silence_s must be a positive number of seconds")
    now = datetime.now(UTC)
    found = [msgspec.structs.asdict(d) | {
        "first_seen": iso(d.first_seen), "last_seen": iso(d.last_seen), "last_inference_at": iso(d.last_inference_at),
        "online": d.last_seen is not None and (now - d.last_seen.replace(tzinfo=UTC)).total_seconds() <= silence_s,
    } for d in rt.store.devices(who.ws.id, win.start, win.end)]
    return JSON({"from": iso(win.start), "to": iso(win.end), "offline_after_s": silence_s,
                 "devices": found})
