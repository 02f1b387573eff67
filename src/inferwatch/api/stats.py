"""Aggregate figures and time series over the same filters as the inference list."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from inferwatch.api.common import JSON, authorize, runtime
from inferwatch.errors import InvalidRequest
from inferwatch.query.buckets import choose_bucket
from inferwatch.query.filters import META_PREFIX, Filters, default_range, parse_filters
from inferwatch.store.base import GROUPS

router = APIRouter(prefix="/api/v1/{workspace}")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@router.get("/stats", summary="Totals and a time series, optionally one series per group")
def stats(workspace: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    params = request.query_params
    filters = parse_filters(params.multi_items(), extra_keys=("bucket", "group_by"))
    filters = default_range(filters, datetime.now(UTC))
    assert filters.start is not None and filters.end is not None
    group_by = params.get("group_by") or None
    if group_by is not None and group_by not in GROUPS and not (
        group_by.startswith(META_PREFIX) and len(group_by) > len(META_PREFIX)
    ):
        raise InvalidRequest(f"group_by must be one of {', '.join(GROUPS)} or meta.<field>")
    bucket_name, bucket = choose_bucket(params.get("bucket"), filters.end - filters.start)
    store = runtime(request).store
    return JSON(
        {
            "from": _iso(filters.start),
            "to": _iso(filters.end),
            "bucket": bucket_name,
            "group_by": group_by,
            "totals": store.totals(ws.id, filters),
            "series": store.series(ws.id, filters, bucket, group_by),
        }
    )


@router.get("/devices", summary="Every device: facts, last seen, online or not, inferences in the period")
def devices(workspace: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    params = request.query_params
    filters = default_range(parse_filters(params.multi_items(), extra_keys=("silence_s",)), datetime.now(UTC))
    assert filters.start is not None and filters.end is not None
    if filters != Filters(start=filters.start, end=filters.end):
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
    found = rt.store.devices(ws.id, filters.start, filters.end)
    for device in found:
        last = datetime.fromisoformat(device["last_seen"]) if device["last_seen"] else None
        device["online"] = last is not None and (now - last).total_seconds() <= silence_s
    return JSON({"from": _iso(filters.start), "to": _iso(filters.end), "offline_after_s": silence_s,
                 "devices": found})
