"""SQL conditions both stores write in the same words: only how a value is bound differs, which
each store's `Params` says (`Binder`), so each store still reads on its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inferwatch.query.filters import MetaTerm


class Binder(Protocol):
    def number(self, value: float) -> str:
        """A bound number."""
        ...

    def texts(self, values: Sequence[str]) -> str:
        """Bound texts, as the right side of `IN`."""
        ...

    def numbers(self, values: Sequence[float]) -> str:
        """Bound numbers, as the right side of `IN`."""
        ...


def meta_terms(term: MetaTerm, p: Binder) -> str:
    """The conditions on one field's metadata row beyond its name, each led by AND: any of its
    values (texts or numbers), then every comparison. A NULL number (a value that reads as no
    number) passes no bound and differs from every number."""
    out = ""
    if term.any_of:
        either = ([f"field_value IN {p.texts(term.texts)}"] if term.texts else []) + (
            [f"field_number IN {p.numbers(term.numbers)}"] if term.numbers else [])
        out += " AND (" + " OR ".join(either) + ")"
    for op, bound in term.bounds:
        out += f" AND field_number {op} {p.number(bound)}"
    if term.not_texts:
        out += f" AND field_value NOT IN {p.texts(term.not_texts)}"
    if term.not_numbers:
        out += f" AND (field_number IS NULL OR field_number NOT IN {p.numbers(term.not_numbers)})"
    return out
