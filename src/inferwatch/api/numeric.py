"""The `numeric=meta.<field>` option of `/stats` and `/groups`: a numeric metadata field's
count, average, least and greatest beside each series point, each group and the window.

Kept out of the routes so both read the option and shape its JSON the same way. The figures
are over the inferences whose field reads as a number (`ingest/metavalues.py`); a point or group
where none does has count 0 and null figures.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.datastructures import QueryParams

from inferwatch.errors import InvalidRequest
from inferwatch.query.filters import META_PREFIX, Filters, meta_field
from inferwatch.store.base import NumericPoint, Store

OPTION = "numeric"
_NONE: dict[str, Any] = {"count": 0, "avg": None, "min": None, "max": None}


def field_of(params: QueryParams, group_by: str | None) -> str | None:
    """The field `numeric=` names, or None when not asked; a 400 for anything but one
    `meta.<field>`, or beside a grouping per prediction (a class), which an inference's one
    value cannot be split over."""
    values = params.getlist(OPTION)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"{OPTION} given twice")
    (value,) = values
    field = meta_field(value)
    if field is None:
        raise InvalidRequest(f"{OPTION} must be meta.<field>, got {value!r}")
    if group_by == "class":
        raise InvalidRequest(f"{OPTION} groups by model_id, device_id or meta.<field>, not by class")
    return field


def figures(point: NumericPoint | None) -> dict[str, Any]:
    return dict(_NONE) if point is None else {name: getattr(point, name) for name in _NONE}


class NumericAnswer:
    """A field's figures for one request, looked up by (bucket start, group)."""

    def __init__(self, store: Store, ws: int, filters: Filters, field: str, group_by: str | None,
                 bucket: timedelta | None) -> None:
        self.field = field
        points, whole = store.numeric_figures_and_whole(ws, filters, field, group_by, bucket)
        self._points = {(p.time, p.group): p for p in points}
        self.window = figures(whole)

    def at(self, time: Any, group: Any) -> dict[str, Any]:
        return figures(self._points.get((time, group)))

    def header(self) -> dict[str, Any]:
        return {"field": f"{META_PREFIX}{self.field}", **self.window}
