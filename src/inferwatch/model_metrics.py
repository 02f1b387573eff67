"""Per-model Prometheus series of each workspace, kept in memory from what the writer commits.

A scrape must cost nothing the store would notice, however often Prometheus asks and however
large the store is: so the series are counters and histograms this process adds to after each
commit, never a query. They start at zero with the process (Prometheus' `rate()` and
`increase()` take a restart's reset in their stride) and count what this process committed, so
with several replicas of a ClickHouse store the workspace's figures are the `sum()` over them.

Label values come from what clients send, so each label (model, device, class) keeps at most
`max_label_values` distinct values per workspace, the first ones seen; every later value is
counted under `other`. Memory and the scrape's size stay bounded whatever is sent.

Counting is per commit, in bulk (each distinct model and device made a small int in one pass,
then `Counter` and numpy), so it adds about a microsecond per inference to the writer thread. An
inference the store already held (a client's retry) is skipped when its whole commit was
repeats; one mixed into a commit with new inferences is counted again: these series are for
rates and dashboards, the store holds the exact totals.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from inferwatch.ingest.rows import InferenceRows

OTHER = "other"
# Upper bounds (`le`) of the confidence histogram: the dashboard's twenty bins.
CONFIDENCE_BOUNDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Of the inference-time histogram, in seconds: a fast detector to a slow segmenter on a CPU.
TIME_BOUNDS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0,
                                  2.5, 5.0, 10.0)
_CONF = np.array(CONFIDENCE_BOUNDS)
_TIME = np.array(TIME_BOUNDS)


@dataclass(slots=True)
class _Histogram:
    """Counts per bucket (not cumulative; the last is above every bound) and the sum."""

    counts: np.ndarray
    total: float = 0.0

    def family_samples(self, bounds: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
        cumulative = np.cumsum(self.counts)
        buckets = [(_le(b), float(c)) for b, c in zip(bounds, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", float(cumulative[-1])))
        return buckets, self.total


@dataclass(slots=True)
class _Workspace:
    labels: dict[str, set[str]] = field(default_factory=lambda: {"model": set(), "device": set(), "class": set()})
    inferences: Counter[tuple[str, str]] = field(default_factory=Counter)
    predictions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    confidence: dict[str, _Histogram] = field(default_factory=dict)
    time: dict[str, _Histogram] = field(default_factory=dict)


class ModelSeries:
    """Every workspace's per-model series; `observe` from the writer, `collector` per scrape."""

    def __init__(self, max_label_values: int) -> None:
        self.max_label_values = max_label_values
        self._lock = threading.Lock()
        self._workspaces: dict[int, _Workspace] = {}

    def observe(self, rows: InferenceRows) -> None:
        """Adds committed rows. Each distinct (workspace, model, device) becomes a small int in
        one pass; counting and bucketing are then done on ints, in C and numpy, and the Python
        work under the lock is per distinct key, not per row."""
        if not len(rows):
            return
        keys: dict[tuple[int, str, str | None], int] = {}
        row_key = np.array([keys.setdefault(k, len(keys))
                            for k in zip(rows.ws, rows.model_id, rows.device_id, strict=True)], dtype=np.int64)
        key_of_prediction = np.repeat(row_key, np.array(rows.n_predictions, dtype=np.int64))
        inferences = np.bincount(row_key, minlength=len(keys)).tolist()
        predictions = Counter(zip(key_of_prediction.tolist(), rows.p_class, strict=True))
        with self._lock:
            labelled = []  # per key: (workspace state, model label, device label)
            for ws, model, device in keys:
                state = self._state(ws)
                labelled.append((state, self._label(state, "model", model), self._label(state, "device", device or "")))
            for (state, model, device), n in zip(labelled, inferences, strict=True):
                state.inferences[(model, device)] += n
            for (key, cls), n in predictions.items():
                state, model, device = labelled[key]
                state.predictions[(model, device, self._label(state, "class", cls))] += n
            self._histograms(rows, labelled, row_key, key_of_prediction)

    def _histograms(self, rows: InferenceRows, labelled: list[tuple[_Workspace, str, str]], row_key: np.ndarray,
                    key_of_prediction: np.ndarray) -> None:
        # Histograms are by (workspace, capped model): keys of one model with several devices share one.
        owners: dict[tuple[int, str], int] = {}
        owner_states: list[tuple[_Workspace, str]] = []
        owner_of_key = np.empty(len(labelled), dtype=np.int64)
        for i, (state, model, _) in enumerate(labelled):
            found = owners.get((id(state), model))
            if found is None:
                found = owners[(id(state), model)] = len(owner_states)
                owner_states.append((state, model))
            owner_of_key[i] = found
        n_owners = len(owner_states)
        index = owner_of_key[row_key]
        times = np.array(rows.inference_time, dtype=np.float64)
        timed = ~np.isnan(times)
        time_counts, time_sums = _bucket(index[timed], times[timed], _TIME, n_owners)
        confidences = np.array(rows.p_confidence, dtype=np.float64)
        conf_counts, conf_sums = _bucket(owner_of_key[key_of_prediction], confidences, _CONF, n_owners)
        for i, (state, model) in enumerate(owner_states):
            if time_counts[i].any():
                _add(state.time, model, time_counts[i], time_sums[i])
            if conf_counts[i].any():
                _add(state.confidence, model, conf_counts[i], conf_sums[i])

    def _state(self, ws: int) -> _Workspace:
        state = self._workspaces.get(ws)
        if state is None:
            state = self._workspaces[ws] = _Workspace()
        return state

    def _label(self, state: _Workspace, kind: str, value: str) -> str:
        seen = state.labels[kind]
        if value in seen:
            return value
        if len(seen) < self.max_label_values:
            seen.add(value)
            return value
        return OTHER

    def collector(self, ws: int) -> Collector:
        """A snapshot of one workspace's series, for `prometheus_client.generate_latest`."""
        with self._lock:
            state = self._workspaces.get(ws)
            snapshot = _Workspace() if state is None else _Workspace(
                inferences=Counter(state.inferences), predictions=Counter(state.predictions),
                confidence={m: _Histogram(h.counts.copy(), h.total) for m, h in state.confidence.items()},
                time={m: _Histogram(h.counts.copy(), h.total) for m, h in state.time.items()},
            )
        return _Snapshot(snapshot)


class _Snapshot(Collector):
    def __init__(self, state: _Workspace) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        inferences = CounterMetricFamily("inferwatch_model_inferences", "Inferences committed, by model and device",
                                         labels=["model_id", "device_id"])
        for (model, device), n in sorted(state.inferences.items()):
            inferences.add_metric([model, device], n)
        yield inferences
        predictions = CounterMetricFamily(
            "inferwatch_model_predictions", "Predictions committed (detections; a classifier's chosen classes),"
            " by model, device and class", labels=["model_id", "device_id", "class"])
        for (model, device, cls), n in sorted(state.predictions.items()):
            predictions.add_metric([model, device, cls], n)
        yield predictions
        yield _histogram_family("inferwatch_model_confidence", "Confidence of each prediction, by model",
                                state.confidence, CONFIDENCE_BOUNDS)
        yield _histogram_family("inferwatch_model_inference_seconds",
                                "Inference time the model reported, by model", state.time, TIME_BOUNDS)


def _histogram_family(name: str, doc: str, histograms: dict[str, _Histogram],
                      bounds: tuple[float, ...]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["model_id"])
    for model, histogram in sorted(histograms.items()):
        buckets, total = histogram.family_samples(bounds)
        family.add_metric([model], buckets, total)
    return family


def _bucket(owner: np.ndarray, values: np.ndarray, bounds: np.ndarray, n_owners: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Per owner: counts per bucket (`le` semantics: a value equal to a bound is in its bucket)
    and the sum of the values."""
    width = len(bounds) + 1
    slot = owner * width + np.searchsorted(bounds, values, side="left")
    counts = np.bincount(slot, minlength=n_owners * width).reshape(n_owners, width)
    sums = np.bincount(owner, weights=values, minlength=n_owners)
    return counts, sums


def _add(histograms: dict[str, _Histogram], model: str, counts: np.ndarray, total: float) -> None:
    found = histograms.get(model)
    if found is None:
        histograms[model] = _Histogram(counts.astype(np.int64), float(total))
    else:
        found.counts += counts
        found.total += float(total)


def _le(bound: float) -> str:
    return repr(float(bound))
