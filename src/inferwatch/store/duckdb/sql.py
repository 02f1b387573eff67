"""Filters compiled to DuckDB SQL (user input only ever travels as bound parameters), and the
transaction that statements meant to hold together run in.

`Params` hands out a named placeholder (`$p0`, `$p1`, ...) for every value and remembers it, so
fragments compose in any order with no positional list to keep in step, and a value used twice
is bound once. DuckDB refuses parameters a statement does not name: each statement gets its
own `Params`. Each function mirrors its ClickHouse twin in `store/clickhouse/sql.py` term for
term, so both backends select the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from inferwatch.query.filters import Filters
from inferwatch.store.terms import inference_terms


class Params(dict[str, Any]):
    """Bound parameters of one statement; `add` returns the placeholder to put in the SQL."""

    def add(self, value: Any) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"${name}"

    def each(self, values: Iterable[Any]) -> str:
        """A placeholder per value, comma-separated: the inside of an `IN (...)`."""
        return ", ".join(self.add(value) for value in values)

    # `terms.Binder`
    text = workspace = time = number = add

    def texts(self, values: Sequence[Any]) -> str:
        return f"({self.each(values)})"

    numbers = texts


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, then COMMIT once the block is through, or ROLLBACK if it (or the COMMIT) raised:
    the statements inside hold together, as a write or as one snapshot for several reads."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def where(ws: int, f: Filters, p: Params, alias: str = "") -> str:
    """A WHERE clause (without the keyword) selecting the workspace's inferences that match."""
    a = f"{alias}." if alias else ""
    terms = inference_terms(ws, f, p, alias, "id_key", "metadata")
    terms += [_holds_any(f"{a}tags", f.tags, p)] if f.tags else []
    if f.on_confidence:
        terms.append(f"len(list_filter({a}predictions, lambda p: {prediction_terms(f, p)})) > 0")
    elif f.classes:
        # Without a confidence term, the stored distinct classes answer without a lambda over
        # every prediction (NULL classes match no term either way).
        terms.append(_holds_any(f"{a}classes", f.classes, p))
    return " AND ".join(terms)


def _holds_any(column: str, values: tuple[str, ...], p: Params) -> str:
    """`column` (a list) holds one of `values`: one list_contains a value, five times quicker
    for classes than list_has_any, which hashes every row's list, and a third quicker for a tag
    (the newest hour's page at 100 million inferences, 32 → 21 ms)."""
    return "(" + " OR ".join(f"list_contains({column}, {p.add(v)})" for v in values) + ")"


def prediction_terms(f: Filters, p: Params, var: str = "p") -> str:
    """The class and confidence terms, on one prediction named `var`."""
    terms = [f"{var}.class IN ({p.each(f.classes)})"] if f.classes else []
    for op, bound in ((">=", f.min_confidence), ("<=", f.max_confidence)):
        if bound is not None:
            terms.append(f"{var}.confidence {op} {p.add(bound)}")
    return " AND ".join(terms)
