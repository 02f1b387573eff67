"""The one filter object behind every read: inference lists, stats, exports and the dashboard.

Parsed once from a query string; each store backend compiles it into SQL with bound parameters.
Repeating a parameter means "any of these" (`model_id=a&model_id=b`); different parameters must
all hold. `meta.<field>=<value>` terms work the same way: the same field repeated is an OR,
different fields are ANDed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from inferwatch.errors import InvalidRequest

_SCALAR_KEYS = {"from", "to", "min_confidence", "max_confidence"}
_LIST_KEYS = {"model_id", "device_id", "class", "tag"}
META_PREFIX = "meta."


@dataclass(frozen=True, slots=True)
class Filters:
    start: datetime | None = None
    end: datetime | None = None
    model_ids: tuple[str, ...] = ()
    device_ids: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_confidence: float | None = None
    max_confidence: float | None = None
    meta: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)

    @property
    def on_predictions(self) -> bool:
        """Class and confidence terms must hold for one and the same prediction."""
        return bool(self.classes) or self.on_confidence

    @property
    def on_confidence(self) -> bool:
        """A confidence term: only the predictions themselves can answer it (a class term alone
        is answered by an inference's distinct classes)."""
        return self.min_confidence is not None or self.max_confidence is not None

    def with_range(self, start: datetime, end: datetime) -> Filters:
        return Filters(start, end, self.model_ids, self.device_ids, self.classes, self.tags,
                       self.min_confidence, self.max_confidence, self.meta)


def parse_time(value: str, name: str) -> datetime:
    """ISO-8601 (UTC unless an offset is given) or unix seconds."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not -1e11 < seconds < 1e11:
            raise InvalidRequest(f"{name}: timestamp out of range")
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, ValueError, OSError):  # before year 1
            raise InvalidRequest(f"{name}: timestamp out of range") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{name}: expected ISO-8601 time or unix seconds, got {value!r}") from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # an offset that moves the time past year 1 or 9999
        raise InvalidRequest(f"{name}: timestamp out of range") from None


def _confidence(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest(f"{name}: expected a number between 0 and 1") from None
    if not 0.0 <= number <= 1.0:
        raise InvalidRequest(f"{name}: expected a number between 0 and 1")
    return number


def parse_filters(params: Iterable[tuple[str, str]], extra_keys: Iterable[str] = ()) -> Filters:
    """Parses filter terms; any other parameter not listed in `extra_keys` is an error, so a
    misspelt filter never silently widens a query."""
    allowed = set(extra_keys) | {"api_key"}
    scalars: dict[str, str] = {}
    lists: dict[str, list[str]] = {k: [] for k in _LIST_KEYS}
    meta: dict[str, list[str]] = {}
    for key, value in params:
        if key in _SCALAR_KEYS:
            if key in scalars:
                raise InvalidRequest(f"{key} given twice")
            scalars[key] = value
        elif key in _LIST_KEYS:
            lists[key].append(value)
        elif key.startswith(META_PREFIX) and len(key) > len(META_PREFIX):
            meta.setdefault(key[len(META_PREFIX):], []).append(value)
        elif key not in allowed:
            raise InvalidRequest(f"unknown query parameter {key!r}")
    start = parse_time(scalars["from"], "from") if "from" in scalars else None
    end = parse_time(scalars["to"], "to") if "to" in scalars else None
    if start and end and end < start:
        raise InvalidRequest("`to` is before `from`")
    lo = _confidence(scalars["min_confidence"], "min_confidence") if "min_confidence" in scalars else None
    hi = _confidence(scalars["max_confidence"], "max_confidence") if "max_confidence" in scalars else None
    return Filters(
        start=start,
        end=end,
        model_ids=tuple(lists["model_id"]),
        device_ids=tuple(lists["device_id"]),
        classes=tuple(lists["class"]),
        tags=tuple(lists["tag"]),
        min_confidence=lo,
        max_confidence=hi,
        meta=tuple((name, tuple(values)) for name, values in meta.items()),
    )


def default_range(filters: Filters, now: datetime, span: timedelta = timedelta(hours=24)) -> Filters:
    """Stats need a bounded window: missing ends default to now and 24 h before the end."""
    end = filters.end or now
    if filters.start is not None:
        start = filters.start
    else:
        try:
            start = end - span
        except OverflowError:  # `to` within a day of year 1
            start = datetime.min.replace(tzinfo=UTC)
    return filters.with_range(start, end)
