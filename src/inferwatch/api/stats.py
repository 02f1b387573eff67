"""Aggregate figures and time series over the same filters as the inference list."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from inferwatch.api.common import JSON, authorize, runtime
from inferwatch.errors import InvalidRequest
from inferwatch.query.buckets import choose_bucket
from inferwatch.query.filters import META_PREFIX, default_range, parse_filters
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
