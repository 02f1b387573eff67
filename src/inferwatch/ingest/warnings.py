"""Ingestion warnings of a Vision Event (docs/vision-events.md, "Ingestion warnings"): what of an
event is stored but not used as sent, one short reason each, naming the path.

Every documented limit is a 400 that stores nothing; these are the rest. Roboflow's clients pass
the user's dicts through unchanged, so a typo (`customMetdata`) or event data of another shape
than its type's reaches the server as sent: refusing it would break a line for a spelling, and
ignoring it would lose it without trace. The event is stored as sent, and each such part is
recorded on it, answered with it and filterable (`"warnings": true`).
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union, get_args, get_origin

import msgspec

if TYPE_CHECKING:
    from inferwatch.ingest.vision_events import Event

S = TypeVar("S", bound=msgspec.Struct)
MAX_WARNINGS = 100  # per event; the rest are counted in one last line
_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
_ANY = "any"

# The fields of each event type's `eventData` (Roboflow's "Event Data Schemas", as the workflow
# block writes them) and what each holds: `str`, `int`, a number from 0 to 1, or one of a few
# values. `reviewer` is inferwatch's own (the dashboard's feedback form names the session's key);
# an operator_feedback's `relatedEventId` and `feedback` are checked as limits (400).
EVENT_DATA: dict[str, dict[str, object]] = {
    "quality_check": {"result": ("pass", "fail"), "externalId": str, "confidence": float},
    "inventory_count": {"location": str, "itemCount": int, "itemType": str, "externalId": str},
    "safety_alert": {"alertType": str, "severity": ("low", "medium", "high"), "description": str,
                     "externalId": str},
    "custom": {"value": str, "externalId": str},
    "operator_feedback": {"relatedEventId": _ANY, "feedback": _ANY, "reviewer": str},
}


def event_warnings(event: Event, unknown: Sequence[str]) -> tuple[str, ...]:
    """Every warning of a valid event: its `unknown` fields (paths, `unknown_fields`), event data
    that does not fit its type, values kept but not filterable, and what is repaired.

    Called for every event of every batch, so an event without any (the common case) is told
    apart with as few Python steps as can be: batch create is the hot path."""
    custom, images, position = event.customMetadata, event.images, event.displayImagePosition
    if not unknown and not event.eventData and not (custom and "" in custom.values()) and (
            position is None or position < len(images)):
        for image in images:
            if image.classifications:
                break
        else:
            return ()
    out = [f"{path}: unknown field, ignored (kept in the body)" for path in unknown]
    if event.eventData:
        out += _event_data(event.eventType, event.eventData)
    if custom and "" in custom.values():
        out += [f"customMetadata{_key(key)}: an empty string is not filterable (kept in the body)"
                for key, value in custom.items() if value == ""]
    if position is not None and position >= len(images):
        out.append(f"displayImagePosition: {position} names no image (the event has {len(images)}); "
                   + ("the first is shown" if images else "ignored"))
    for index, image in enumerate(images):
        if image.classifications and (image.objectDetections or image.instanceSegmentations or image.keypoints):
            boxes = len(image.objectDetections) + len(image.instanceSegmentations) + len(image.keypoints)
            out.append(f"images[{index}].classifications: not predictions of the image's inference, which are its"
                       f" {boxes} boxes (kept in the body)")
    if len(out) > MAX_WARNINGS:
        out[MAX_WARNINGS - 1:] = [f"and {len(out) - MAX_WARNINGS + 1} more warnings"]
    return tuple(out)


def _event_data(event_type: str, data: dict[str, Any]) -> list[str]:
    fields = EVENT_DATA[event_type]
    out: list[str] = []
    for key, value in data.items():
        where = f"eventData{_key(key)}"
        kind = fields.get(key)
        if kind is None:
            out.append(f"{where}: not a field of {event_type} events ({', '.join(fields)}), kept as sent")
        elif kind != _ANY and not _fits(value, kind):
            out.append(f"{where}: expected {_expected(kind)}, kept as sent")
        if value == "" or not isinstance(value, str | int | float | bool):
            what = "an empty string" if value == "" else f"{_json_type(value)}, not a string, number or boolean,"
            out.append(f"{where}: {what} is not filterable (kept in the body)")
    return out


def _fits(value: Any, kind: object) -> bool:
    if isinstance(kind, tuple):
        return value in kind
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
    return isinstance(value, str)


def _expected(kind: object) -> str:
    if isinstance(kind, tuple):
        quoted = [f'"{v}"' for v in kind]
        return " or ".join([", ".join(quoted[:-1]), quoted[-1]])
    return {int: "an integer", float: "a number from 0 to 1"}.get(kind, "a string")  # type: ignore[call-overload]


def _json_type(value: Any) -> str:
    return "null" if value is None else "an object" if isinstance(value, dict) else "a list"


def _key(key: str) -> str:
    """`.key`, or `["key"]` (JSON-quoted, cut at 100 characters) when it is not a plain name."""
    if _NAME.match(key):
        return f".{key}"
    return f"[{msgspec.json.encode(key[:100]).decode()}{'…' if len(key) > 100 else ''}]"


# -- unknown fields ---------------------------------------------------------------------------------

def unknown_fields(value: Any, struct: type[msgspec.Struct], path: str = "") -> list[str]:
    """The paths of the keys of `value` (a body decoded as plain JSON, already valid as `struct`)
    that no field of `struct`, or of the structs nested in it, names."""
    if not isinstance(value, dict):
        return []
    nested = _nested(struct)
    found: list[str] = []
    for key, item in value.items():
        where = f"{path}{_key(key)}" if path else _key(key).removeprefix(".")
        if key not in nested:
            found.append(where)
        elif (inner := nested[key]) is not None:
            if isinstance(item, list):
                for i, element in enumerate(item):
                    found += unknown_fields(element, inner, f"{where}[{i}]")
            else:
                found += unknown_fields(item, inner, where)
    return found


_NESTED: dict[type, dict[str, type[msgspec.Struct] | None]] = {}


def _nested(struct: type[msgspec.Struct]) -> dict[str, type[msgspec.Struct] | None]:
    """Each field's name as sent, and the struct its value holds (itself or in a list), if any."""
    if struct not in _NESTED:
        _NESTED[struct] = {f.encode_name: _struct_in(f.type) for f in msgspec.structs.fields(struct)}
    return _NESTED[struct]


def _struct_in(tp: Any) -> type[msgspec.Struct] | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return next((s for arg in get_args(tp) if (s := _struct_in(arg)) is not None), None)


def strict_twin(struct: type[S], loose: frozenset[str] = frozenset()) -> type[S]:
    """A subclass of `struct` with the same fields and checks that refuses unknown fields, its
    nested structs likewise (so what it decodes is still an instance of `struct`'s classes).
    `loose`: string patterns the twin leaves out, for a caller that knows its input meets them."""
    return _twin(struct, {}, loose)


def _twin(tp: Any, made: dict[type, type], loose: frozenset[str]) -> Any:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if tp not in made:
            fields = []
            for f in msgspec.structs.fields(tp):
                default = (msgspec.field(name=f.encode_name) if f.required else
                           msgspec.field(name=f.encode_name, default_factory=f.default_factory)
                           if f.default_factory is not msgspec.NODEFAULT else
                           msgspec.field(name=f.encode_name, default=f.default))
                fields.append((f.name, _twin(f.type, made, loose), default))
            made[tp] = msgspec.defstruct(f"Strict{tp.__name__}", fields, bases=(tp,), forbid_unknown_fields=True,
                                         module=tp.__module__)
        return made[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return Annotated[(_twin(args[0], made, loose), *(_unpatterned(m, loose) for m in tp.__metadata__))]
    if origin is Union or origin is types.UnionType:
        return Union[tuple(_twin(a, made, loose) for a in args)]  # noqa: UP007
    if origin in (list, tuple, dict):
        return origin[tuple(_twin(a, made, loose) for a in args)]
    return tp


def _unpatterned(meta: Any, loose: frozenset[str]) -> Any:
    """`meta` without its pattern when that is one of `loose`, its other constraints kept."""
    if not isinstance(meta, msgspec.Meta) or meta.pattern not in loose:
        return meta
    kept = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "tz", "title", "description",
            "examples", "extra_json_schema", "extra")
    return msgspec.Meta(**{k: v for k in kept if (v := getattr(meta, k)) is not None})
