"""Validated field types shared by every wire format (msgspec checks them while decoding).

Bounds on every number mean NaN and Infinity never get in (JSON has no NaN; an overflowing
literal such as 1e999 is out of range), and patterns keep control characters out of names.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec

from inferwatch.errors import InvalidRequest
from inferwatch.ingest import limits

_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_ID_LEN, pattern=_NO_CONTROL)]
ModelId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=limits.MAX_MODEL_ID_LEN, pattern=_NO_CONTROL)
]
ClassName = Annotated[str, msgspec.Meta(max_length=limits.MAX_CLASS_LEN, pattern=NO_NUL)]
FieldName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=limits.MAX_FIELD_NAME_LEN, pattern=_NO_CONTROL)
]
# Values may hold tabs or newlines (free text), never NUL.
FieldValue = Annotated[
    str, msgspec.Meta(min_length=1, max_length=limits.MAX_FIELD_VALUE_LEN, pattern=r"^[^\x00]+$")
]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Coordinate = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=1e6)]
Pixels = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
ClassId = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
ImageIndex = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
# The largest whole numbers both stores hold: 64-bit (DuckDB's BIGINT, ClickHouse's Int64) and
# 32-bit (INTEGER, Int32). Every integer the API takes is bounded by one, so a larger one is a 400
# naming its field rather than an overflow in the engine.
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1
SmallCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT32)]


T = TypeVar("T")


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """A body decoded and validated, or the 400 that says what is wrong with it."""
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(str(exc)) from None


def metadata_value(value: str | int | float | bool) -> str:
    """Roboflow's metadata values are strings; scripts that send a number or a flag mean its text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)
