"""SQL conditions both stores write in the same words: only how a value is bound differs, which
each store's `Params` says (`Binder`), so each store still reads on its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.rows import naive_utc


class Binder(Protocol):
    def text(self, value: str) -> str:
        """A bound text."""
        ...

    def workspace(self, ws: int) -> str:
        """A bound workspace id."""
        ...

    def time(self, value: datetime) -> str:
        """A bound time (naive UTC)."""
        ...

    def number(self, value: float) -> str:
        """A bound number."""
        ...

    def texts(self, values: Sequence[str]) -> str:
        """Bound texts, as the right side of `IN`."""
        ...

    def numbers(self, values: Sequence[float]) -> str:
        """Bound numbers, as the right side of `IN`."""
        ...


def inference_terms(ws: int, f: Filters, p: Binder, alias: str, key: str, metadata: str) -> list[str]:
    """The terms of a store's `where` over inferences that both write alike: the workspace, the
    time window, the models and devices, and each metadata term, a semi-join on `key` (what
    joins an inference to its metadata rows) into `metadata` (the table as the store reads it)."""
    a = f"{alias}." if alias else ""
    terms = [f"{a}ws = {p.workspace(ws)}"]
    for op, bound in ((">=", f.start), ("<", f.end)):
        if bound is not None:
            terms.append(f"{a}ts {op} {p.time(naive_utc(bound))}")
    for column, values in (("model_id", f.model_ids), ("device_id", f.device_ids)):
        if values:
            terms.append(f"{a}{column} IN {p.texts(values)}")
    terms += [f"{a}{key} IN ({field_rows(ws, t.field, p, key, metadata)}{meta_terms(t, p)})" for t in f.meta]
    return terms


def field_rows(ws: int, field: str, p: Binder, columns: str, metadata: str) -> str:
    """`SELECT columns` of one field's metadata rows in the workspace (`metadata`: the table as
    the store reads it), for a semi-join or a join; more conditions may follow, led by AND."""
    return f"SELECT {columns} FROM {metadata} WHERE ws = {p.workspace(ws)} AND field_name = {p.text(field)}"


def number_joins(ws: int, field: str, group_by: str | None, p: Binder, key: str,
                 metadata: str) -> tuple[str, str | None]:
    """The joins onto inferences `i` that give each one holding a number in `field` that number
    (`v.field_number`) and, grouped by a metadata field, its value (`m.field_value`, NULL where
    none); and the group's expression (None: no group). `key` joins an inference to its
    metadata rows."""
    join = (f" JOIN ({field_rows(ws, field, p, f'{key}, field_number', metadata)} AND field_number IS NOT NULL) v"
            f" ON v.{key} = i.{key}")
    if group_by is None or group_by in ("model_id", "device_id"):
        return join, group_by and f"i.{group_by}"
    values = field_rows(ws, group_by.removeprefix("meta."), p, f"{key}, field_value", metadata)
    return f"{join} LEFT JOIN ({values}) m ON m.{key} = i.{key}", "m.field_value"


def meta_terms(term: MetaTerm, p: Binder, alias: str = "") -> str:
    """The conditions on one field's metadata row (as `alias`, if named) beyond its name, each
    led by AND: any of its values (texts or numbers), then every comparison. A NULL number (a
    value that reads as no number) passes no bound and differs from every number."""
    a = f"{alias}." if alias else ""
    field_value, field_number = f"{a}field_value", f"{a}field_number"
    out = ""
    if term.any_of:
        either = ([f"{field_value} IN {p.texts(term.texts)}"] if term.texts else []) + (
            [f"{field_number} IN {p.numbers(term.numbers)}"] if term.numbers else [])
        out += " AND (" + " OR ".join(either) + ")"
    for op, bound in term.bounds:
        out += f" AND {field_number} {op} {p.number(bound)}"
    if term.not_texts:
        out += f" AND {field_value} NOT IN {p.texts(term.not_texts)}"
    if term.not_numbers:
        out += f" AND ({field_number} IS NULL OR {field_number} NOT IN {p.numbers(term.not_numbers)})"
    return out


def field_terms(term: MetaTerm, p: Binder, text: str, number: str, has_text: str, has_number: str | None) -> str:
    """`meta_terms` on an event's own row rather than a metadata row (`events.field_values`,
    `field_numbers`): `text` and `number` read the field's text and number there, `has_text` says
    whether it has the field, `has_number` whether it has a number (None: `number` is NULL where
    not, as a DuckDB MAP answers a missing key; a ClickHouse Map answers '' or 0). The same rows
    pass as through the metadata row: the field is there, then its value terms and every
    comparison. Unguarded, a bound stays a plain comparison, which DuckDB checks against each row
    group's statistics first."""
    def numeric(condition: str) -> str:
        return condition if has_number is None else f"({has_number} AND {condition})"

    terms = [has_text]
    if term.any_of:
        either = ([f"{text} IN {p.texts(term.texts)}"] if term.texts else []) + (
            [numeric(f"{number} IN {p.numbers(term.numbers)}")] if term.numbers else [])
        terms.append("(" + " OR ".join(either) + ")")
    for op, bound in term.bounds:
        terms.append(numeric(f"{number} {op} {p.number(bound)}"))
    if term.not_texts:
        terms.append(f"{text} NOT IN {p.texts(term.not_texts)}")
    if term.not_numbers:
        missing = f"{number} IS NULL" if has_number is None else f"NOT {has_number}"
        terms.append(f"({missing} OR {number} NOT IN {p.numbers(term.not_numbers)})")
    return "(" + " AND ".join(terms) + ")"
