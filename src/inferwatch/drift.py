"""Drift: does a model see, and answer, what it used to? A current window against a reference one.

Pure numpy/scipy over samples the store hands over (`Store.drift_sample`: the newest inferences
of each window, with their predictions' classes, confidences and box sizes). Each feature gets
the scores the field knows and a verdict against a stated threshold:

- continuous features (confidence, detections per image, box size, box aspect ratio, inference
  time): the Population Stability Index over ten bins cut at the reference's deciles (confidence
  over ten equal bins of [0, 1], so the histograms read the same as the dashboard's), and the
  two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`) with its p-value;
- the class mix: PSI over the classes of either window, and the Jensen-Shannon distance
  (`scipy.spatial.distance.jensenshannon`, base 2, so it lies in [0, 1]);
- numeric metadata (`meta.<field>`, e.g. the SDK's `meta.image_sharpness`): continuous features
  like the others, one value per inference that holds the field. A camera going blurry or dark
  moves these before the model's answers do, and no model or label is needed to see it.

Why both kinds: PSI says how much a distribution moved, comparable across features and sample
sizes (the industry's 0.1 "watch" and 0.2 "act"); KS says whether the move is more than chance,
but on tens of thousands of values it calls a trivial move significant, so KS flags only when
its statistic is also large (0.1). A window with fewer values than `MIN_SAMPLE` is reported with
its figures and never flagged: a handful of inferences says nothing about a distribution.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inferwatch.query.filters import META_PREFIX

# scipy is imported where a comparison needs it, not here: store.base imports this module, so
# every server and CLI process would otherwise spend about half a second of its start on scipy.stats
# before answering anything, and most never compare a window.

PSI_THRESHOLD = 0.2
KS_P_THRESHOLD = 0.01
KS_MIN_STATISTIC = 0.1
JS_THRESHOLD = 0.1
MIN_SAMPLE = 30
BINS = 10
# Empty bins would make PSI infinite; a share of 1e-4 stands for "almost never".
_EPSILON = 1e-4

CONTINUOUS = ("confidence", "detections", "box_size", "aspect_ratio", "inference_time")
FEATURES = (*CONTINUOUS, "class_mix")
# Numeric metadata features one answer compares at most (by name): each costs a histogram and a
# KS test, and a workspace may attach many numbers.
MAX_META_FEATURES = 20


def is_feature(name: str) -> bool:
    """A feature drift can score: one of FEATURES, or `meta.<field>` (a numeric metadata field)."""
    return name in FEATURES or (name.startswith(META_PREFIX) and len(name) > len(META_PREFIX))


def meta_field(feature: str) -> str | None:
    """The metadata field a `meta.<field>` feature reads; None for the others."""
    return feature[len(META_PREFIX):] if feature.startswith(META_PREFIX) else None


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One inference as drift reads it (what `Store.drift_sample` returns, newest first)."""

    n_predictions: int
    inference_time: float | None
    image_width: int | None
    image_height: int | None
    classes: list[str]
    confidences: list[float | None]
    widths: list[float | None]
    heights: list[float | None]
    # The inference's numeric metadata drift was asked for: field name -> number.
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Features:
    """A window's values per feature."""

    inferences: int
    values: dict[str, np.ndarray]
    classes: Counter[str]


def features(rows: Iterable[SampleRow]) -> Features:
    """The values each feature is tested on: every prediction's confidence, box size (the
    square root of its share of the image, so it reads as a length ratio) and aspect ratio
    (width / height); every inference's detections and inference time; and every number of
    a metadata field an inference holds, as feature `meta.<field>`."""
    confidence: list[float] = []
    size: list[float] = []
    aspect: list[float] = []
    detections: list[float] = []
    times: list[float] = []
    classes: Counter[str] = Counter()
    numbers: dict[str, list[float]] = {}
    n = 0
    for row in rows:
        n += 1
        for name, number in row.numbers.items():
            numbers.setdefault(META_PREFIX + name, []).append(number)
        detections.append(row.n_predictions)
        if row.inference_time is not None:
            times.append(row.inference_time)
        area = (row.image_width or 0) * (row.image_height or 0)
        for cls, conf, w, h in zip(row.classes, row.confidences, row.widths, row.heights, strict=True):
            classes[cls] += 1
            if conf is not None:
                confidence.append(conf)
            if w is not None and h is not None and w > 0 and h > 0:
                aspect.append(w / h)
                if area > 0:
                    size.append(math.sqrt(w * h / area))
    values = {
        "confidence": np.asarray(confidence, dtype=float),
        "detections": np.asarray(detections, dtype=float),
        "box_size": np.asarray(size, dtype=float),
        "aspect_ratio": np.asarray(aspect, dtype=float),
        "inference_time": np.asarray(times, dtype=float),
    }
    values.update((name, np.asarray(found, dtype=float)) for name, found in numbers.items())
    return Features(n, values, classes)


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population Stability Index of two distributions over the same bins (counts or shares)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.clip(e / e.sum(), _EPSILON, None) if e.sum() else np.full(len(e), 1 / max(len(e), 1))
    a = np.clip(a / a.sum(), _EPSILON, None) if a.sum() else np.full(len(a), 1 / max(len(a), 1))
    return float(np.sum((a - e) * np.log(a / e)))


def edges_for(feature: str, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Bin edges: ten equal bins of [0, 1] for confidence; else the reference's deciles (merged
    where values repeat, as detections per image do), widened to take every value of both."""
    if feature == "confidence":
        return np.linspace(0.0, 1.0, BINS + 1)
    both = np.concatenate([reference, current])
    lo, hi = float(both.min()), float(both.max())
    base = reference if len(reference) else current
    inner = np.unique(np.quantile(base, np.linspace(0, 1, BINS + 1))[1:-1])
    inner = inner[(inner > lo) & (inner < hi)]
    if hi == lo:
        return np.array([lo - 0.5, hi + 0.5])
    return np.concatenate([[lo], inner, [hi]])


def _histogram(values: np.ndarray, edges: np.ndarray) -> list[int]:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return [int(c) for c in counts]


def compare_feature(feature: str, reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Histograms on shared bins, PSI and KS, and whether this feature drifted."""
    enough = len(reference) >= MIN_SAMPLE and len(current) >= MIN_SAMPLE
    out: dict[str, Any] = {"feature": feature, "enough_data": enough, "drifted": False,
                           "reference": {"n": len(reference)}, "current": {"n": len(current)}, "tests": []}
    if not len(reference) or not len(current):
        return out
    edges = edges_for(feature, reference, current)
    ref_counts, cur_counts = _histogram(reference, edges), _histogram(current, edges)
    out["edges"] = [float(e) for e in edges]
    out["reference"].update(histogram=ref_counts, mean=float(reference.mean()))
    out["current"].update(histogram=cur_counts, mean=float(current.mean()))
    score = psi(ref_counts, cur_counts)
    from scipy.stats import ks_2samp

    ks = ks_2samp(reference, current)
    statistic, p_value = float(ks.statistic), float(ks.pvalue)
    psi_drift = enough and score >= PSI_THRESHOLD
    ks_drift = enough and p_value < KS_P_THRESHOLD and statistic >= KS_MIN_STATISTIC
    out["tests"] = [
        {"test": "psi", "score": score, "threshold": PSI_THRESHOLD, "drifted": psi_drift},
        {"test": "ks", "score": statistic, "p_value": p_value, "threshold": KS_P_THRESHOLD,
         "min_statistic": KS_MIN_STATISTIC, "drifted": ks_drift},
    ]
    out["drifted"] = psi_drift or ks_drift
    out["score"] = score
    return out


def compare_classes(reference: Counter[str], current: Counter[str]) -> dict[str, Any]:
    """The class mix: shares per class (the union of both windows), PSI and Jensen-Shannon."""
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    enough = n_ref >= MIN_SAMPLE and n_cur >= MIN_SAMPLE
    names = sorted(set(reference) | set(current))
    out: dict[str, Any] = {"feature": "class_mix", "enough_data": enough, "drifted": False,
                           "reference": {"n": n_ref}, "current": {"n": n_cur}, "tests": []}
    if not n_ref or not n_cur:
        return out
    ref = [reference.get(c, 0) for c in names]
    cur = [current.get(c, 0) for c in names]
    out["classes"] = names
    out["reference"].update(histogram=ref, shares=[x / n_ref for x in ref])
    out["current"].update(histogram=cur, shares=[x / n_cur for x in cur])
    score = psi(ref, cur)
    from scipy.spatial.distance import jensenshannon

    js = float(jensenshannon(np.asarray(ref, float) / n_ref, np.asarray(cur, float) / n_cur, base=2))
    psi_drift = enough and score >= PSI_THRESHOLD
    js_drift = enough and js >= JS_THRESHOLD
    out["tests"] = [
        {"test": "psi", "score": score, "threshold": PSI_THRESHOLD, "drifted": psi_drift},
        {"test": "jensen_shannon", "score": js, "threshold": JS_THRESHOLD, "drifted": js_drift},
    ]
    out["drifted"] = psi_drift or js_drift
    out["score"] = score
    return out


def _values(found: Features, feature: str) -> np.ndarray:
    """A feature's values in a window (none for a metadata field no inference of it holds)."""
    return found.values.get(feature, np.empty(0))


def compare(reference: Iterable[SampleRow], current: Iterable[SampleRow]) -> dict[str, Any]:
    """Every feature of the two windows (the numeric metadata fields either holds, the first
    MAX_META_FEATURES by name, after the class mix); `drifted` if any feature did, `score` the
    largest PSI."""
    ref, cur = features(reference), features(current)
    results = [compare_feature(f, ref.values[f], cur.values[f]) for f in CONTINUOUS]
    results.append(compare_classes(ref.classes, cur.classes))
    meta = sorted({f for f in (*ref.values, *cur.values) if f.startswith(META_PREFIX)})[:MAX_META_FEATURES]
    results.extend(compare_feature(f, _values(ref, f), _values(cur, f)) for f in meta)
    scores = [r["score"] for r in results if r.get("enough_data") and "score" in r]
    return {
        "reference_inferences": ref.inferences,
        "current_inferences": cur.inferences,
        "drifted": any(r["drifted"] for r in results),
        "score": max(scores) if scores else None,
        "features": results,
    }


def feature_score(reference: Iterable[SampleRow], current: Iterable[SampleRow], feature: str) -> float | None:
    """One feature's PSI (what an alert on drift watches); None without enough data."""
    ref, cur = features(reference), features(current)
    result = (compare_classes(ref.classes, cur.classes) if feature == "class_mix"
              else compare_feature(feature, _values(ref, feature), _values(cur, feature)))
    return result["score"] if result["enough_data"] and "score" in result else None
