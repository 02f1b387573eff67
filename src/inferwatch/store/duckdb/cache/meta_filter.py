"""Figures of inferences filtered by a metadata value, read from the metadata copies.

A filter such as `meta.factory=mexico` selected its inferences by a semi-join of every inference
of the window into the field's values: the whole window's rows were read for a fifth of them.
The copies beside the metadata (`meta_copies.py`) hold one row per inference and field with the
inference's summary columns and the value's text and number, so the inferences a term on a field
selects (a value, a range, a value excluded) are exactly the copies of that field meeting it:
they are read instead, and the window's rows are not.
Every figure is the scan's, as the copies carry the same values.
"""

from __future__ import annotations

import dataclasses

from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.duckdb.sql import Params, where
from inferwatch.store.terms import meta_terms


def copies_term(filters: Filters) -> tuple[MetaTerm, Filters] | None:
    """The first metadata term (the copies carry each value's text and number, so any term
    selects them as it selects the field's metadata rows) and the filters without it, or None.
    The other terms, metadata ones included, apply to the copies as they would to the rows."""
    if not filters.meta:
        return None
    return filters.meta[0], dataclasses.replace(filters, meta=filters.meta[1:])


def copies_where(ws: int, term: MetaTerm, rest: Filters, p: Params, alias: str) -> str:
    """The terms selecting the copies (as `alias`) of the inferences the filters select."""
    return (f"{alias}.field_name = {p.add(term.field)}{meta_terms(term, p, alias)}"
            f" AND {where(ws, rest, p, alias)}")
