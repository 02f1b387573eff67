"""Time buckets for series: fixed sizes a chart can label, chosen so a range has few enough."""

from __future__ import annotations

from datetime import timedelta

from inferwatch.errors import InvalidRequest

BUCKETS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
}
TARGET_POINTS = 200
MAX_POINTS = 10_000


def choose_bucket(name: str | None, span: timedelta) -> tuple[str, timedelta]:
    if name is None or name == "auto":
        for key, size in BUCKETS.items():
            if span / size <= TARGET_POINTS:
                return key, size
        return "1d", BUCKETS["1d"]
    if name not in BUCKETS:
        raise InvalidRequest(f"bucket must be one of auto, {', '.join(BUCKETS)}")
    size = BUCKETS[name]
    if span / size > MAX_POINTS:
        raise InvalidRequest(f"bucket {name} gives more than {MAX_POINTS} points over this range")
    return name, size
