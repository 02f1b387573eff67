"""Figures of inferences filtered by a metadata value, read from the metadata copies.

A filter such as `meta.factory=mexico` selected its inferences by a semi-join of every inference
of the window into the field's values: the whole window's rows were read for a fifth of them.
The copies beside the metadata (`meta_copies.py`) hold one row per inference and field with the
inference's summary columns, so the inferences holding one of a field's values are exactly the
copies of that field with that value: they are read instead, and the window's rows are not.
Every figure is the scan's, as the copies carry the same values.
"""

from __future__ import annotations

import dataclasses

from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.duckdb.sql import Params, where


def copies_term(filters: Filters) -> tuple[MetaTerm, Filters] | None:
    """The metadata term the copies can select by (its value is one of some texts, and nothing
    else is asked of it) and the filters without it, or None. The other terms, metadata ones
    included, apply to the copies as they would to the rows."""
    for i, term in enumerate(filters.meta):
        if term.texts and not (term.numbers or term.bounds or term.not_texts or term.not_numbers):
            return term, dataclasses.replace(filters, meta=filters.meta[:i] + filters.meta[i + 1:])
    return None


def copies_where(ws: int, term: MetaTerm, rest: Filters, p: Params, alias: str) -> str:
    """The terms selecting the copies (as `alias`) of the inferences the filters select."""
    return (f"{alias}.field_name = {p.add(term.field)} AND {alias}.field_value IN ({p.each(term.texts)})"
            f" AND {where(ws, rest, p, alias)}")
