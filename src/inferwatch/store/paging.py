"""Where a page of the inference list is looked for, newest first, on either store.

In the last hour before the page's top, then in windows 16 times wider, and past ten years in
the whole table. Rows arrive roughly in time order, so a window lets the store skip most of its
data by time (DuckDB's row-group min/max, ClickHouse's monthly partitions); a filter matching
few recent rows no longer reads and sorts every row for one page, and one matching nothing costs
about one full read, as without windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store.base import Cursor
from inferwatch.store.rows import EPOCH, naive_utc, to_us

FIRST_WINDOW = timedelta(hours=1)
WIDEN = 16
WIDEST_WINDOW = timedelta(days=3650)


def window_starts(top: datetime | None, floor: datetime | None) -> Iterator[datetime | None]:
    """The lower time bound of each window to try in turn, below `top` (None: the store holds
    nothing to anchor on); the last one is None, the whole table, once a window would reach
    `floor` (the filter's own start) or grow past the widest."""
    span = FIRST_WINDOW
    while top is not None and span <= WIDEST_WINDOW:
        try:
            lowest = top - span
        except OverflowError:  # a cursor or `to` near year 1
            break
        if floor is not None and lowest <= floor:
            break
        yield lowest
        span *= WIDEN
    yield None


def below(ts: str, inference_id: str, image_index: str) -> str:
    """The terms selecting the rows after one in the list's order, newest first (older, or as old
    and lower in id and image), from the placeholders binding that row's values."""
    return (f"(ts < {ts} OR (ts = {ts} AND (inference_id < {inference_id}"
            f" OR (inference_id = {inference_id} AND image_index < {image_index}))))")


def page(filters: Filters, after: Cursor | None, limit: int, newest: Callable[[], datetime | None],
         fetch: Callable[[datetime | None], list[tuple[Any, ...]]]) -> tuple[list[tuple[Any, ...]], Cursor | None]:
    """A page of rows in `LIST_COLUMNS` order, newest first, and where the next one starts (None
    on the last). `fetch(lowest)` gives at most `limit + 1` rows of the page at or after `lowest`
    (None: no lower bound); `newest()` the store's newest time, the top when neither the cursor
    nor the filters set one."""
    top = (EPOCH + timedelta(microseconds=after.ts_us) if after is not None
           else naive_utc(filters.end) if filters.end is not None else newest())
    floor = naive_utc(filters.start) if filters.start is not None else None
    for lowest in window_starts(top, floor):
        rows = fetch(lowest)
        if lowest is None or len(rows) > limit:
            break
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = Cursor(to_us(last[2]), last[0], last[1])
    return rows[:limit], following
