"""Where a page of the inference list is looked for, newest first, on either store.

In the last hour before the page's top, then in windows 16 times wider, and past ten years in
the whole table. Rows arrive roughly in time order, so a window lets the store skip most of its
data by time (DuckDB's row-group min/max, ClickHouse's monthly partitions); a filter matching
few recent rows no longer reads and sorts every row for one page, and one matching nothing costs
about one full read, as without windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

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
