"""Filters compiled to DuckDB SQL. User input only ever travels as bound parameters."""

from __future__ import annotations

from typing import Any

from inferwatch.query.filters import Filters


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def where(ws: int, f: Filters, alias: str = "") -> tuple[str, list[Any]]:
    """A WHERE clause (without the keyword) selecting the workspace's inferences that match."""
    a = f"{alias}." if alias else ""
    terms = [f"{a}ws = ?"]
    params: list[Any] = [ws]
    if f.start is not None:
        terms.append(f"{a}ts >= ?")
        params.append(f.start.replace(tzinfo=None))
    if f.end is not None:
        terms.append(f"{a}ts < ?")
        params.append(f.end.replace(tzinfo=None))
    if f.model_ids:
        terms.append(f"{a}model_id IN ({_marks(len(f.model_ids))})")
        params.extend(f.model_ids)
    if f.device_ids:
        terms.append(f"{a}device_id IN ({_marks(len(f.device_ids))})")
        params.extend(f.device_ids)
    if f.tags:
        terms.append(f"list_has_any({a}tags, [{_marks(len(f.tags))}]::VARCHAR[])")
        params.extend(f.tags)
    if f.on_confidence:
        terms.append(f"len(list_filter({a}predictions, lambda p: {_prediction_terms(f, params)})) > 0")
    elif f.classes:
        # Without a confidence term, the stored distinct classes answer without a lambda over
        # every prediction (NULL classes match no term either way): one list_contains a class,
        # five times quicker than list_has_any, which hashes every row's list.
        terms.append("(" + " OR ".join(f"list_contains({a}classes, ?)" for _ in f.classes) + ")")
        params.extend(f.classes)
    for name, values in f.meta:
        terms.append(
            f"{a}id_key IN (SELECT id_key FROM metadata"
            f" WHERE ws = ? AND field_name = ? AND field_value IN ({_marks(len(values))}))"
        )
        params.extend([ws, name, *values])
    return " AND ".join(terms), params


def _prediction_terms(f: Filters, params: list[Any]) -> str:
    terms = []
    if f.classes:
        terms.append(f"p.class IN ({_marks(len(f.classes))})")
        params.extend(f.classes)
    if f.min_confidence is not None:
        terms.append("p.confidence >= ?")
        params.append(f.min_confidence)
    if f.max_confidence is not None:
        terms.append("p.confidence <= ?")
        params.append(f.max_confidence)
    return " AND ".join(terms)
