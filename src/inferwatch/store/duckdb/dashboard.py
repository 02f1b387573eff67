"""The dashboard's reads on DuckDB: models table, distributions, per-group comparison.

Kept apart from the core store so the queries the pages need can grow without touching the
ingest-side code; `DuckDBStore` mixes these in. Every query goes through `where()`, so the
dashboard slices exactly as the list, stats and export do.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import duckdb

from inferwatch.query.distributions import HISTOGRAM_BINS, distributions_answer
from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store import sketch
from inferwatch.store.base import Distributions, GroupRow, ModelSummary
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.cache.meta_groups import group_rows
from inferwatch.store.duckdb.cache.sums import (
    bin_sums,
    coarse_bin,
    edge_where,
    rows_per_class,
    sums_where,
    time_buckets,
)
from inferwatch.store.duckdb.sql import Params, prediction_terms, where
from inferwatch.store.rows import MAX_GROUP_CLASSES, ranked_classes


class DashboardReads:
    """Read queries behind the dashboard's figures; needs the host's `_cursor()`."""

    _caches: Caches

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def _summed_inferences(self, ws: int, filters: Filters, hours: tuple[datetime, datetime] | None,
                           p: Params) -> str:
        raise NotImplementedError

    def models(self, ws: int, filters: Filters) -> list[ModelSummary]:
        """One row per model: volume, average confidence and time, latest inference, in the filters."""
        hours = None if filters.classes else self._caches.summed_hours(filters)
        if hours is not None:
            return self._models_summed(ws, filters, hours)
        p = Params()
        return answer.records(ModelSummary, self._cursor().execute(
            "SELECT model_id, mode(task), count(*), sum(sum_confidence) / nullif(sum(n_predictions), 0),"
            " avg(inference_time), quantile_cont(inference_time, 0.95), max(ts), count(DISTINCT device_id)"
            f" FROM inferences WHERE {where(ws, filters, p)} GROUP BY model_id ORDER BY 3 DESC, 1", p).fetchall())

    def _models_summed(self, ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> list[ModelSummary]:
        """The models table from the per-hour sums (`cache/sums.py`): counts, sums, devices,
        latest time and task exact; the 95th percentile of times from the bucketed times
        (`store/sketch.py`)."""
        con = self._cursor()
        p = Params()
        per_task = con.execute(
            "SELECT model_id, task, sum(n), sum(confidence_sum), sum(n_predictions), sum(time_sum), sum(n_timed),"
            f" max(last_ts), list(DISTINCT device_id) FROM {self._summed_inferences(ws, filters, hours, p)}"
            " GROUP BY ALL", p).fetchall()
        p = Params()
        buckets: dict[str, list[tuple[int, int]]] = {}
        for model, k, n in con.execute(time_buckets(ws, filters, hours, p, by="model_id"), p).fetchall():
            buckets.setdefault(model, []).append((k, int(n)))
        models: dict[str, list[Any]] = {}
        for model, task, n, conf, preds, t_sum, timed, last, devices in per_task:
            # The most frequent task, as DuckDB's mode() of the rows, the first name among equals.
            row = models.setdefault(model, [model, task, 0, 0.0, 0, 0.0, 0, last, set(), 0])
            if n > row[9] or (n == row[9] and (task or "") < (row[1] or "")):
                row[1], row[9] = task, n
            row[2] += n
            row[3] += conf
            row[4] += preds
            row[5] += t_sum
            row[6] += timed
            row[7] = max(row[7], last)
            row[8].update(d for d in devices if d is not None)
        rows = [(m, task, n, conf / preds if preds else None, t_sum / timed if timed else None,
                 sketch.quantile(buckets.get(m, []), 0.95), last, len(devices))
                for m, task, n, conf, preds, t_sum, timed, last, devices, _ in models.values()]
        rows.sort(key=lambda r: (-r[2], r[0]))
        return answer.records(ModelSummary, rows)

    def distributions(self, ws: int, filters: Filters, bins: int) -> Distributions:
        """Predictions per class and confidence histograms (all predictions and per top class).

        Counts predictions, not inferences: with class or confidence filters only the predictions
        that meet them are counted, as in `series(group_by="class")`.
        """
        hours = self._caches.summed_hours(filters) if bins == HISTOGRAM_BINS and not filters.device_ids else None
        if hours is not None:
            return self._distributions_summed(ws, filters, hours)
        con = self._cursor()

        # One pass over the predictions: per class and confidence bin (NULL: no confidence), the
        # count and the sum of confidences, from which `distributions_answer` adds up the rest.
        p = Params()
        # A bin's index: confidence 1.0 falls into the last bin, not one past it; no confidence,
        # no bin. Bins that are runs of the sums' fine bins are counted as the sums count them.
        bin_of = coarse_bin("p.confidence", bins) or (
            f"CASE WHEN p.confidence IS NOT NULL THEN least(floor(p.confidence * {p.add(bins)})::INTEGER,"
            f" {p.add(bins - 1)}) END")
        binned = con.execute(
            f"SELECT p.class, {bin_of}, count(*), sum(p.confidence)"
            f" FROM {_predictions(where(ws, filters, p, 'i'), filters, p)} GROUP BY 1, 2", p).fetchall()
        # Inferences (rows: an id's images count apart) per class: without prediction filters,
        # each row's distinct classes are stored (`classes`), which saves telling rows apart
        # among the predictions.
        p = Params()
        if filters.on_predictions:
            preds = _predictions(where(ws, filters, p, "i"), filters, p, "i.key, ")
            per_inference = f"SELECT p.class, count(DISTINCT key) FROM {preds} GROUP BY 1"
        else:
            per_inference = (f"SELECT c, count(*) FROM (SELECT unnest(i.classes) AS c FROM inferences i"
                             f" WHERE {where(ws, filters, p, 'i')}) GROUP BY 1")
        with_class = con.execute(per_inference, p).fetchall()
        return distributions_answer(binned, dict(with_class), bins)

    def _distributions_summed(self, ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> Distributions:
        """The same counts from the per-hour sums of the window's whole hours (which keep the
        dashboard's bins, per model and class), plus the predictions of its partial first and
        last hours (`cache/sums.py`)."""
        con = self._cursor()
        self._caches.ready(con, ws, *hours)

        p = Params()
        binned = con.execute(
            f"SELECT class, {coarse_bin('bin', HISTOGRAM_BINS, fine=True)}, sum(n), sum(confidence_sum)"
            f" FROM (SELECT class, bin, n, confidence_sum FROM {bin_sums(ws, filters, hours, p)}"
            f" UNION ALL SELECT p.class, {sketch.confidence_bin_sql('p.confidence')}, 1, p.confidence"
            f" FROM {_predictions(edge_where(ws, filters, hours, p), filters, p)}) GROUP BY 1, 2", p).fetchall()
        # As in `distributions`: a class filter counts the rows holding a matching prediction;
        # otherwise each row's distinct classes.
        p = Params()
        if filters.on_predictions:
            edges = _predictions(edge_where(ws, filters, hours, p), filters, p, "i.key, ")
            with_class = con.execute(
                "SELECT c, sum(n) FROM (SELECT class AS c, n_inferences AS n FROM class_hours"
                f" WHERE {sums_where(ws, filters, hours, p)} UNION ALL SELECT p.class, count(DISTINCT key)"
                f" FROM {edges} GROUP BY 1) GROUP BY 1", p).fetchall()
        else:
            with_class = [(c, k) for _, c, k in con.execute(rows_per_class(ws, filters, hours, p), p).fetchall()]
        return distributions_answer(binned, {c: int(n) for c, n in with_class}, HISTOGRAM_BINS)

    def group_table(self, ws: int, filters: Filters, group_by: str) -> list[GroupRow]:
        """One row per value of `group_by` (model_id, device_id or meta.<field>): volume,
        confidence, time, and its most predicted classes; inferences without the field are the
        `null` group."""
        con = self._cursor()
        field = group_by.removeprefix("meta.") if group_by.startswith("meta.") else None
        hours = None if filters.on_predictions else self._caches.summed_hours(filters)
        if field is not None and self._caches.copies_serve(filters):
            rows = group_rows(self, con, ws, filters, field, MAX_GROUP_CLASSES)
        elif field is None and hours is not None:
            rows = self._summed_groups(con, ws, filters, group_by, hours)
        else:
            rows = self._joined_groups(con, ws, filters, group_by, field)
        return answer.records(GroupRow, rows)

    def _summed_groups(self, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, column: str,
                       hours: tuple[datetime, datetime]) -> list[tuple[Any, ...]]:
        """The comparison table's rows by model or device from the per-hour sums
        (`cache/sums.py`): counts, sums, devices, latest time and class mix exact, the 95th
        percentile of times from the bucketed times (`store/sketch.py`)."""
        p = Params()
        sums = con.execute(
            f"SELECT {column}, sum(n), sum(confidence_sum), sum(n_predictions), sum(time_sum), sum(n_timed),"
            f" count(DISTINCT device_id), max(last_ts) FROM {self._summed_inferences(ws, filters, hours, p)}"
            " GROUP BY 1", p).fetchall()
        p = Params()
        buckets: dict[Any, list[tuple[int, int]]] = {}
        for g, k, n in con.execute(time_buckets(ws, filters, hours, p, by=column), p).fetchall():
            buckets.setdefault(g, []).append((k, int(n)))
        p = Params()
        mix: dict[Any, Counter[str]] = {}
        for g, c, n in con.execute(rows_per_class(ws, filters, hours, p, by=column), p).fetchall():
            mix.setdefault(g, Counter())[c] = int(n)
        rows = []
        for g, n, conf, preds, t_sum, n_timed, devices, last in sums:
            p95 = sketch.quantile(buckets.get(g, []), 0.95)
            rows.append((g, n, conf / preds if preds else None, t_sum / n_timed if n_timed else None, p95, preds,
                         devices, last, ranked_classes(mix.get(g, Counter()), MAX_GROUP_CLASSES)))
        rows.sort(key=lambda r: (-r[1], r[0] is None, r[0] or ""))
        return rows

    def _joined_groups(self, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, group_by: str,
                       field: str | None) -> list[tuple[Any, ...]]:
        """The comparison table's rows in two passes over the inferences, joined to the metadata
        field if grouping by one."""
        p = Params()
        expr, rows_ = f"i.{group_by}", "inferences i"
        if field is not None:
            expr, rows_ = "m.field_value", (
                f"inferences i LEFT JOIN (SELECT id_key, field_value FROM metadata WHERE ws = {p.add(ws)}"
                f" AND field_name = {p.add(field)}) m ON m.id_key = i.id_key")
        rows_ += f" WHERE {where(ws, filters, p, 'i')}"
        rows = con.execute(
            f"SELECT {expr} AS g, count(*), sum(i.sum_confidence) / nullif(sum(i.n_predictions), 0),"
            " avg(i.inference_time), quantile_cont(i.inference_time, 0.95), sum(i.n_predictions),"
            f" count(DISTINCT i.device_id), max(i.ts) FROM {rows_} GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST",
            p).fetchall()
        mix = con.execute(
            f"SELECT g, c, n FROM (SELECT g, c, count(*) AS n FROM (SELECT {expr} AS g, unnest(i.classes) AS c"
            f" FROM {rows_}) GROUP BY ALL) QUALIFY row_number() OVER (PARTITION BY g ORDER BY n DESC, c)"
            f" <= {MAX_GROUP_CLASSES} ORDER BY g, n DESC, c", p).fetchall()
        classes = answer.class_mix(mix)
        return [(*row, classes.get(row[0], [])) for row in rows]


def _predictions(terms: str, filters: Filters, p: Params, key: str = "") -> str:
    """The predictions (as `p`, beside their row's `key` if asked) of the inferences (alias `i`)
    the terms select, only those meeting the filters' prediction terms."""
    preds = f"(SELECT {key}unnest(i.predictions) AS p FROM inferences i WHERE {terms})"
    return preds + (f" WHERE {prediction_terms(filters, p)}" if filters.on_predictions else "")
