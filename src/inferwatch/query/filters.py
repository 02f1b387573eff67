"""The one filter object behind every read: inference lists, stats, exports and the dashboard.

Parsed once from a query string; each store backend compiles it into SQL with bound parameters.
Repeating a parameter means "any of these" (`model_id=a&model_id=b`); different parameters must
all hold. `meta.<field>=<value>` terms work the same way: the same field repeated is an OR,
different fields are ANDed.

Metadata comparisons name their operator in brackets after the field, so a plain value keeps
its meaning whatever it holds (`meta.url=http://x` is still the text `http://x`):

- `meta.f=v`: the value's text is `v` exactly, as always;
- `meta.f[eq]=v`: equal to `v`, as numbers when `v` is a number (`meta.t[eq]=150` matches 150,
  150.0 and the string "150"), else as text (`meta.ok[eq]=true` matches the flag and the text);
  `eq` terms join the field's plain values: any of them;
- `meta.f[neq]=v`: the field is there and differs from `v` (same reading of `v`);
- `meta.f[gt]=x`, `[gte]`, `[lt]`, `[lte]`: the field reads as a number (`metavalues.py`) and
  compares so with the number `x`.

Comparison terms (`neq`, `gt`, ...) of one field must all hold, and hold with its value terms:
`meta.t[gt]=100&meta.t[lte]=200` is a range. Any other word in brackets is a 400; a field whose
own name ends in brackets is named with an explicit operator (`meta.a[b][eq]=v`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from inferwatch.errors import InvalidRequest
from inferwatch.ingest.fields import metadata_value
from inferwatch.ingest.metavalues import number_of, typed

_SCALAR_KEYS = {"from", "to", "min_confidence", "max_confidence"}
_LIST_KEYS = {"model_id", "device_id", "class", "tag"}
META_PREFIX = "meta."
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
# The comparison each bound operator names, as both stores' SQL writes it.
BOUNDS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_OPERATOR = re.compile(r"^(.*)\[([A-Za-z]+)\]$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class MetaTerm:
    """What one metadata field must hold: any of its value terms (a text, or a number; none
    given: the field is merely there), and every one of its comparisons."""

    field: str
    texts: tuple[str, ...] = ()  # the value's text is one of these
    numbers: tuple[float, ...] = ()  # or its number is one of these
    bounds: tuple[tuple[str, float], ...] = ()  # (">=", 150.0): its number compares so, each one
    not_texts: tuple[str, ...] = ()  # its text is none of these
    not_numbers: tuple[float, ...] = ()  # its number is none of these (no number differs from all)

    @property
    def any_of(self) -> bool:
        """Whether value terms restrict the field (else only the comparisons do)."""
        return bool(self.texts or self.numbers)

    @staticmethod
    def equal(name: str, *texts: str) -> MetaTerm:
        """Today's plain term: the value's text is one of `texts`."""
        return MetaTerm(name, texts=texts)


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
    meta: tuple[MetaTerm, ...] = field(default_factory=tuple)

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
    # A date ("2026-12-04..."; no number has a dash after four digits) is not tried as a number
    # first: the failed float() cost an exception for every event of a Vision Events batch.
    if text[4:5] == "-" and text[:4].isdigit():
        return _iso_time(text, value, name)
    try:
        seconds = float(text)
    except ValueError:
        return _iso_time(text, value, name)
    if not -1e11 < seconds < 1e11:
        raise InvalidRequest(f"{name}: timestamp out of range")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):  # before year 1
        raise InvalidRequest(f"{name}: timestamp out of range") from None


def _iso_time(text: str, value: str, name: str) -> datetime:
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


class _MetaBuilder:
    """The terms of one field as they are parsed, in the order given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.texts: list[str] = []
        self.numbers: list[float] = []
        self.bounds: list[tuple[str, float]] = []
        self.not_texts: list[str] = []
        self.not_numbers: list[float] = []

    def add(self, op: str | None, value: str, key: str) -> None:
        if op is None:
            self.texts.append(value)
            return
        number = number_of(value.strip())
        if op in BOUNDS:
            if number is None:
                raise InvalidRequest(f"{key}: expected a number such as 150 or -2.5, got {value!r}")
            self.bounds.append((BOUNDS[op], number))
        elif number is None:
            (self.texts if op == "eq" else self.not_texts).append(value)
        else:
            (self.numbers if op == "eq" else self.not_numbers).append(number)

    def term(self) -> MetaTerm:
        return MetaTerm(self.name, tuple(self.texts), tuple(self.numbers), tuple(self.bounds),
                        tuple(self.not_texts), tuple(self.not_numbers))


def typed_term(name: str, op: str, value: object, kind: str | None = None) -> MetaTerm:
    """One comparison whose operand arrives typed, as a JSON filter gives it (Vision Events'
    `customMetadataFilters`: `{"field", "operator", "value", "type"}`); several on one field
    are ANDed by listing them all in `Filters.meta`. `kind` (`string`, `number`, `boolean`)
    says how to compare, else the operand's own JSON type does: a string compares as text
    (`"150"` is not 150.0 here), a number as a number, a flag as its text `true`/`false`."""
    where = f"metadata filter on {name!r}"
    if op not in OPERATORS:
        raise InvalidRequest(f"{where}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    scalar = value.strip() if isinstance(value, str) else value
    stored = typed(scalar) if isinstance(scalar, str | int | float) else None  # read as a stored value is
    if kind is None:
        kind = "string" if stored is None else stored[1]
    if kind == "number":
        number = None if stored is None else stored[2]
        if number is None:
            raise InvalidRequest(f"{where}: expected a number, got {value!r}")
        if op in BOUNDS:
            return MetaTerm(name, bounds=((BOUNDS[op], number),))
        return MetaTerm(name, numbers=(number,)) if op == "eq" else MetaTerm(name, not_numbers=(number,))
    if kind == "boolean":
        if not isinstance(value, bool) and value not in ("true", "false"):
            raise InvalidRequest(f"{where}: expected true or false, got {value!r}")
        text = metadata_value(value)
    elif kind == "string":
        if not isinstance(value, str):
            raise InvalidRequest(f"{where}: expected a string, got {value!r}")
        text = value
    else:
        raise InvalidRequest(f"{where}: type must be string, number or boolean, got {kind!r}")
    if op in BOUNDS:
        raise InvalidRequest(f"{where}: {op} compares numbers, not a {kind}")
    return MetaTerm(name, texts=(text,)) if op == "eq" else MetaTerm(name, not_texts=(text,))


def meta_field(name: str) -> str | None:
    """The field `meta.<field>` names; None for any other name, `meta.` alone included."""
    return (name[len(META_PREFIX):] or None) if name.startswith(META_PREFIX) else None


def meta_key(key: str) -> tuple[str, str | None]:
    """`meta.<field>` or `meta.<field>[<op>]` as (field, operator or None); a 400 for any other
    word in brackets, so a misspelt operator never silently becomes part of a field's name."""
    rest = key[len(META_PREFIX):]
    found = _OPERATOR.match(rest)
    if found is None:
        return rest, None
    name, op = found.group(1), found.group(2)
    if not name:
        raise InvalidRequest(f"{key}: no field named; filters on metadata are meta.<field>[<operator>]=")
    if op not in OPERATORS:
        raise InvalidRequest(f"{key}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}"
                             f" (a field whose name ends in [{op}] is {key}[eq]=)")
    return name, op


def parse_filters(params: Iterable[tuple[str, str]], extra_keys: Iterable[str] = ()) -> Filters:
    """Parses filter terms; any other parameter not listed in `extra_keys` is an error, so a
    misspelt filter never silently widens a query."""
    allowed = set(extra_keys) | {"api_key"}
    scalars: dict[str, str] = {}
    lists: dict[str, list[str]] = {k: [] for k in _LIST_KEYS}
    meta: dict[str, _MetaBuilder] = {}
    for key, value in params:
        if key in _SCALAR_KEYS:
            if key in scalars:
                raise InvalidRequest(f"{key} given twice")
            scalars[key] = value
        elif key in _LIST_KEYS:
            lists[key].append(value)
        elif key.startswith(META_PREFIX) and len(key) > len(META_PREFIX):
            name, op = meta_key(key)
            meta.setdefault(name, _MetaBuilder(name)).add(op, value, key)
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
        meta=tuple(builder.term() for builder in meta.values()),
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
