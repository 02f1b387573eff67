"""The whole hours of a window, for the per-hour summaries of both stores: which of a window's hours
a summary answers for (the rest, its partial first and last hours, are read from the rows), so
both stores split a window alike and answer the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from inferwatch.query.filters import Filters

HOUR = timedelta(hours=1)


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def next_hour(hour: datetime) -> datetime:
    """The hour after, or the last instant there is for the last hour of year 9999."""
    try:
        return hour + HOUR
    except OverflowError:
        return datetime.max


def ceil_hour(value: datetime) -> datetime:
    floor = floor_hour(value)
    return floor if floor == value else next_hour(floor)


def window_hours(filters: Filters) -> tuple[datetime, datetime]:
    """The hours [lo, hi) (naive UTC) that hold the filters' window, partial ones included."""
    lo = floor_hour(filters.start.replace(tzinfo=None)) if filters.start else datetime.min
    hi = ceil_hour(filters.end.replace(tzinfo=None)) if filters.end else datetime.max
    return lo, hi


def summed_hours(filters: Filters, bucket: timedelta | None = None) -> tuple[datetime, datetime] | None:
    """The whole hours [lo, hi) (naive UTC) of the filters' window the sums can answer for, or
    None. The sums know model, device and class, not tags, metadata or a single prediction's
    confidence; a time bucket must be made of whole hours."""
    if filters.tags or filters.meta or filters.min_confidence is not None or filters.max_confidence is not None:
        return None
    if filters.start is None or filters.end is None:
        return None
    if bucket is not None and (bucket < HOUR or bucket % HOUR):
        return None
    lo, hi = ceil_hour(filters.start.replace(tzinfo=None)), floor_hour(filters.end.replace(tzinfo=None))
    return (lo, hi) if lo < hi else None
