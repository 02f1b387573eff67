"""The figures behind the dashboard's overview and model pages, as JSON anyone can call.

Each route takes the same filters as `/inferences` and `/stats` (a window defaults to the last
24 h), so a page's numbers can be reproduced with curl.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch.api import numeric
from inferwatch.api.common import JSON, runtime
from inferwatch.auth import Reader, Window, window
from inferwatch.errors import InvalidRequest
from inferwatch.query.distributions import HISTOGRAM_BINS
from inferwatch.query.filters import meta_field
from inferwatch.store.rows import iso

router = APIRouter(prefix="/api/v1/{workspace}")

# Figures compared with the previous period; "change" is relative: 0.25 means 25 % more.
COMPARED = ("inferences", "predictions", "avg_confidence", "avg_inference_time", "p95_inference_time", "devices")
MAX_BINS = 100
GROUPABLE = ("model_id", "device_id")


def change(current: Any, previous: Any) -> float | None:
    """Relative change, None when there is nothing to compare with (no figure, or zero before)."""
    if current is None or previous is None or previous == 0:
        return None
    return float((current - previous) / previous)


@router.get("/overview", summary="Totals of a period with the previous equal period and the change")
async def overview(who: Reader, win: Annotated[Window, Depends(window())], request: Request) -> JSON:
    """`p95_inference_time` may come from per-hour buckets of times: within 1 % (relative) of the
    exact percentile. Every other figure is exact."""
    try:
        previous_start = win.start - (win.end - win.start)
    except OverflowError:  # a window reaching back to year 1 has no equal period before it
        previous_start = datetime.min.replace(tzinfo=UTC)
    before = win.filters.with_range(previous_start, win.start)
    store = runtime(request).store
    # The two periods side by side, each in a worker thread, as Roboflow's stats route reads its two.
    now, then = await asyncio.gather(run_in_threadpool(store.totals, who.ws.id, win.filters),
                                     run_in_threadpool(store.totals, who.ws.id, before))
    return JSON({
        "from": iso(win.start), "to": iso(win.end),
        "previous": {"from": iso(previous_start), "to": iso(win.start)},
        "totals": now, "previous_totals": then,
        "change": {key: change(getattr(now, key), getattr(then, key)) for key in COMPARED},
    })


@router.get("/models", summary="One row per model: inferences, confidence, time, latest inference")
def models(who: Reader, win: Annotated[Window, Depends(window())], request: Request) -> JSON:
    """`p95_inference_time` may come from per-hour buckets of times: within 1 % (relative) of the
    exact percentile. Every other figure is exact."""
    return JSON({"from": iso(win.start), "to": iso(win.end),
                 "models": [msgspec.structs.asdict(m) | {"last_seen": iso(m.last_seen)}
                            for m in runtime(request).store.models(who.ws.id, win.filters)]})


@router.get("/distributions", summary="Predictions per class and confidence histograms (`bins`, default 20)")
def distributions(who: Reader, win: Annotated[Window, Depends(window("bins"))], request: Request) -> JSON:
    text = request.query_params.get("bins", str(HISTOGRAM_BINS))
    bins = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= bins <= MAX_BINS:
        raise InvalidRequest(f"bins must be a whole number from 1 to {MAX_BINS}")
    found = runtime(request).store.distributions(who.ws.id, win.filters, bins)
    return JSON({"from": iso(win.start), "to": iso(win.end),
                 **msgspec.structs.asdict(found), "classes": [
                     {"class": c.name, "predictions": c.predictions, "inferences": c.inferences,
                      "avg_confidence": c.avg_confidence} for c in found.classes]})


@router.get("/groups", summary="One row per value of `group_by` (model_id, device_id, meta.<field>) to compare")
async def groups(who: Reader, win: Annotated[Window, Depends(window("group_by", numeric.OPTION))],
                 request: Request) -> JSON:
    """`numeric=meta.<field>` adds the field's count, average, least and greatest to every group
    and to the window (`numeric`). A group's `p95_inference_time` may come from per-hour buckets
    of times: within 1 % (relative) of the exact percentile; every other figure is exact."""
    group_by = request.query_params.get("group_by") or ""
    if group_by not in GROUPABLE and meta_field(group_by) is None:
        raise InvalidRequest("group_by must be model_id, device_id or meta.<field>")
    field = numeric.field_of(request.query_params, group_by)
    store = runtime(request).store
    table_read = run_in_threadpool(store.group_table, who.ws.id, win.filters, group_by)
    figures: numeric.NumericAnswer | None = None
    if field is None:
        table = await table_read
    else:
        # The table and the numeric figures side by side in two worker threads, as `/overview`
        # reads its two periods.
        table, figures = await asyncio.gather(table_read, run_in_threadpool(
            numeric.NumericAnswer, store, who.ws.id, win.filters, field, group_by, None))
    rows = [msgspec.structs.asdict(g) | {
        "last_seen": iso(g.last_seen), "classes": [{"class": c, "inferences": n} for c, n in g.classes],
    } for g in table]
    answer: dict[str, Any] = {"from": iso(win.start), "to": iso(win.end), "group_by": group_by, "groups": rows}
    if figures is not None:
        answer["numeric"] = figures.header()
        for row in rows:
            row["numeric"] = figures.at(None, row["value"])
    return JSON(answer)
