"""Typed metadata values: what a value was sent as, and the number it reads as.

A value is stored three ways, so no reader has to guess:
- its text, exactly as every store has always kept it (`fields.metadata_value`): equality
  filters, group-bys and the CSV export read this, so strings answer as they always have;
- its kind, `string`, `number` or `boolean`: the JSON type it arrived as, so an answer gives a
  number back as a number and a flag as a flag;
- its number: the value as a finite double when it is a number, or a string whose whole text
  is a JSON number (`3`, `-2.5`, `1e3`; not `0x10`, ` 3` or `1_000`). Range filters and the
  numeric figures of a group read it, so a script that sent `"42"` as a string is still
  compared as 42, while the answer keeps its string.

The rule "is this text a JSON number" is written here once for Python and once as a regular
expression both engines share (their migrations fill stored rows with it), so both stores hold
the same numbers.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

from inferwatch.ingest.fields import metadata_value

Kind = Literal["string", "number", "boolean"]
MetaScalar = str | int | float | bool

# A JSON number, whole text: what both engines' migrations match (RE2 syntax, as in Python).
NUMBER_PATTERN: Final = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")


def kind_of(value: MetaScalar) -> Kind:
    """The JSON type a decoded value arrived as (bool before int: True is an int in Python)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def number_of(text: str) -> float | None:
    """The finite double a text reads as when it is a JSON number, else None."""
    if len(text) > 400 or not _NUMBER.match(text):  # longer than any double's digits
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def typed(value: MetaScalar) -> tuple[str, Kind, float | None]:
    """A decoded value as it is stored: (text, kind, number)."""
    kind = kind_of(value)
    if kind == "number":
        try:
            number: float | None = float(value)
        except OverflowError:  # an integer past the largest double
            number = None
        text = metadata_value(value)
        return text, kind, number if number is not None and math.isfinite(number) else None
    text = metadata_value(value)
    return text, kind, None if kind == "boolean" else number_of(text)


def answer_value(text: str, kind: str | None) -> MetaScalar:
    """A stored value as the JSON it arrived as: a whole number as an int, other numbers as a
    float, a flag as a bool, anything else (strings, rows stored before kinds) as its text."""
    if kind == "number":
        if _INTEGER.match(text):
            return int(text)
        number = number_of(text)
        return text if number is None else number
    if kind == "boolean":
        return text == "true"
    return text
