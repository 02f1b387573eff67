"""The dashboard's reads on ClickHouse: the twins of `store/duckdb/dashboard.py`, query for query.

Kept apart from the core store as on DuckDB. Each query answers what its DuckDB twin answers
for the same rows: same groups, same ordering (NULL groups last), same NULLs where a figure has
no values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from inferwatch.query.distributions import HISTOGRAM_BINS, distributions_answer
from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store import sketch
from inferwatch.store.base import Distributions, GroupRow, ModelSummary
from inferwatch.store.clickhouse import class_sums, meta_sums, summaries
from inferwatch.store.clickhouse.sql import PREDICTIONS, Params, group_join, prediction_terms, quantile, where
from inferwatch.store.hours import summed_hours
from inferwatch.store.rows import MAX_GROUP_CLASSES, ranked_classes


class DashboardReads:
    """Read queries behind the dashboard's figures; needs the host's `_rows()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def current_class_hours(self, ws: int, hours: class_sums.Hours) -> None:
        raise NotImplementedError

    def current_meta_hours(self, ws: int, field: str, hours: meta_sums.Hours) -> None:
        raise NotImplementedError

    def models(self, ws: int, filters: Filters) -> list[ModelSummary]:
        """One row per model: volume, average confidence and time, latest inference, in the filters."""
        hours = None if filters.classes else summed_hours(filters)
        if hours is not None:
            return self._models_summed(ws, filters, hours)
        p = Params()
        clause = where(ws, filters, p)
        return answer.records(ModelSummary, self._rows(
            "SELECT model_id, topK(1)(task)[1], count(), sum(sum_confidence) / nullIf(sum(n_predictions), 0),"
            f" avg(inference_time), {quantile('inference_time', 0.95, 'q95')}, max(ts), uniqExact(device_id)"
            f" FROM inferences WHERE {clause} GROUP BY model_id ORDER BY 3 DESC, 1",
            p,
        ))

    def _models_summed(self, ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> list[ModelSummary]:
        """The models table from the per-hour summaries (`summaries.py`): counts, sums, devices,
        latest time and task exact (the most frequent task, the first name among equals, as
        DuckDB's mode() of the rows); the 95th percentile of times from the time buckets."""
        p = Params()
        rows = self._rows(
            "SELECT model_id, arraySort(t -> (-t.2, t.1), arrayZip(mapKeys(tasks), mapValues(tasks)))[1].1,"
            " total, confidence, avg_time, buckets, last, devices FROM (SELECT model_id, sumMap(map(task, n)) AS tasks,"
            " sum(n) AS total, sum(confidence_sum) / nullIf(sum(n_preds), 0) AS confidence,"
            " sum(time_sum) / nullIf(sum(n_timed), 0) AS avg_time, sumMap(times) AS buckets, max(last_ts) AS last,"
            f" uniqExact(device_id) AS devices FROM {summaries.summed(ws, filters, hours, p, hourly=False)}"
            " GROUP BY model_id)"
            " ORDER BY total DESC, model_id", p)
        return answer.records(ModelSummary, [
            (model, task, n, confidence, avg_time, sketch.quantile(times.items(), 0.95), last, devices)
            for model, task, n, confidence, avg_time, times, last, devices in rows])

    def distributions(self, ws: int, filters: Filters, bins: int) -> Distributions:
        """Predictions per class and confidence histograms (all predictions and per top class)."""
        hours = summed_hours(filters) if bins == HISTOGRAM_BINS and not filters.device_ids else None
        if hours is not None:
            return self._distributions_summed(ws, filters, hours)
        p = Params()
        clause = where(ws, filters, p, "i")
        outer = f" WHERE {prediction_terms(filters, p)}" if filters.on_predictions else ""
        n = p.add(bins, "Int32")
        # One pass over the predictions (class, bin, count, sum), as on DuckDB.
        binned = self._rows(
            f"SELECT p_class, least(toInt32(floor(p_confidence * {n})), {n} - 1), count(), sum(p_confidence)"
            f" FROM (SELECT p_class, p_confidence FROM inferences i{PREDICTIONS} WHERE {clause}){outer} GROUP BY 1, 2",
            p,
        )
        if filters.on_predictions:
            per_inference = (
                "SELECT p_class, uniqExact(inference_id, image_index) FROM (SELECT i.inference_id AS inference_id,"
                f" i.image_index AS image_index, p_class, p_confidence FROM inferences i{PREDICTIONS} WHERE {clause})"
                f"{outer} GROUP BY 1")
        else:
            per_inference = f"SELECT c, count() FROM inferences i ARRAY JOIN i.classes AS c WHERE {clause} GROUP BY 1"
        inferences = dict(self._rows(per_inference, p))
        return distributions_answer(binned, inferences, bins)

    def _distributions_summed(self, ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> Distributions:
        """The same counts from the per-class sums of the window's whole hours (their fine
        confidence bins, in runs of the dashboard's) and the predictions of its partial first and
        last hours binned alike (`class_sums.py`), as the DuckDB store reads its sums."""
        self.current_class_hours(ws, hours)
        p = Params()
        binned: list[tuple[str, int | None, int, float | None]] = []
        run = sketch.CONFIDENCE_BINS // HISTOGRAM_BINS
        for c, counts in self._rows(
                f"SELECT class, sumMap(bins) FROM {class_sums.bins(ws, filters, hours, p)} GROUP BY class", p):
            coarse: dict[int | None, int] = {}
            for fine, n in counts.items():
                b = None if fine == class_sums.NO_CONFIDENCE else fine // run
                coarse[b] = coarse.get(b, 0) + n
            binned += [(c, b, n, None) for b, n in coarse.items()]
        # The confidences' sum per class, from the sums (the bins count, they do not add up), as a
        # row of no predictions.
        p = Params()
        binned += [(c, 0, 0, total) for c, total in self._rows(
            f"SELECT class, sum(confidence_sum) FROM {class_sums.predictions(ws, filters, hours, p)} GROUP BY class",
            p)]
        p = Params()
        inferences = dict(self._rows(
            f"SELECT class, sum(n) FROM {class_sums.holding(ws, filters, hours, p)} GROUP BY 1", p))
        return distributions_answer(binned, inferences, HISTOGRAM_BINS)

    def group_table(self, ws: int, filters: Filters, group_by: str) -> list[GroupRow]:
        """One row per value of `group_by` (model_id, device_id or meta.<field>); inferences
        without the field are the `null` group."""
        field = None if filters.on_predictions else meta_sums.field_of(filters, group_by)
        if field is not None:
            # From the per-hour sums of the field's values (`meta_sums.py`).
            whole = meta_sums.hours_of(filters)
            self.current_meta_hours(ws, field, whole)
            return self._table_from_sums(meta_sums.group_column(group_by),
                                         lambda p: meta_sums.summed(ws, field, filters, whole, p),
                                         lambda p: meta_sums.holding(ws, field, filters, whole, p))
        hours = None if filters.on_predictions else summed_hours(filters)
        if group_by in ("model_id", "device_id") and hours is not None:
            # From `hour_sums`, and the class mix from the per-class sums (`class_sums.py`).
            summed_span = hours
            self.current_class_hours(ws, summed_span)
            return self._table_from_sums(group_by, lambda p: summaries.summed(ws, filters, summed_span, p,
                                                                              hourly=False),
                                         lambda p: class_sums.holding(ws, filters, summed_span, p))
        p = Params()
        expr, join = group_join(ws, filters, group_by, p)
        # One pass over the rows (each joined to the grouping field's metadata): per group, and per
        # group and set of classes its inferences hold, which the class mix is counted from.
        out = self._rows(
            f"SELECT {expr} AS g, i.classes AS classes, count() AS n,"
            " sum(i.sum_confidence) / nullIf(sum(i.n_predictions), 0), avg(i.inference_time),"
            f" {quantile('i.inference_time', 0.95, 'q95')}, sum(i.n_predictions), uniqExact(i.device_id), max(i.ts),"
            f" grouping(classes) FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY GROUPING SETS ((g), (g, classes)) ORDER BY n DESC, g NULLS LAST",
            p,
        )
        held: dict[Any, Counter[str]] = {}
        for g, classes, n, *_, by_group in out:
            if by_group == 0:  # 0: this row is grouped by the set of classes too
                counts = held.setdefault(g, Counter())
                for c in classes:
                    counts[c] += n
        return answer.records(GroupRow, [
            (g, n, *figures, ranked_classes(held.get(g, Counter()), MAX_GROUP_CLASSES))
            for g, _, n, *figures, by_group in out if by_group == 1])

    def _table_from_sums(self, column: str, summed: Callable[[Params], str],
                         holding: Callable[[Params], str]) -> list[GroupRow]:
        """The comparison table by `column` from per-hour sums, as the DuckDB store reads its own:
        the figures from `summed` (a subquery of `summaries.summed`'s columns), counts, sums,
        devices and latest time exact, the 95th percentile of times from the time buckets; the
        class mix from `holding` (a subquery of the inferences holding each class, as `n`)."""
        p = Params()
        rows = self._rows(
            f"SELECT {column} AS g, sum(n) AS total, sum(confidence_sum) / nullIf(sum(n_preds), 0),"
            " sum(time_sum) / nullIf(sum(n_timed), 0), sumMap(times), sum(n_preds), uniqExact(device_id),"
            f" max(last_ts) FROM {summed(p)} GROUP BY g ORDER BY total DESC, g NULLS LAST", p)
        p = Params()
        classes = answer.class_mix(self._rows(
            f"SELECT {column} AS g, class AS c, sum(n) AS k FROM {holding(p)}"
            f" GROUP BY g, c ORDER BY g, k DESC, c LIMIT {MAX_GROUP_CLASSES:d} BY g", p))
        return answer.records(GroupRow, [
            (g, n, confidence, avg_time, sketch.quantile(times.items(), 0.95), preds, devices, last,
             classes.get(g, [])) for g, n, confidence, avg_time, times, preds, devices, last in rows])
