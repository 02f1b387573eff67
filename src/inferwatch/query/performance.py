"""Measured model performance from ground truth that users attach as metadata.

An inference is *labelled* when it carries the model's label field (e.g. `expected=blue`). The
label, mapped through the model's value map (`ok` -> `none`), is the expected class; the model's
verdict is the set of classes it predicted at or above the confidence threshold (a classifier's
top class, a detector's detections). The verdict is right when the expected class is among
them, or when the expected class is the "no detection" label and nothing was found. For the
confusion matrix a right verdict counts as (expected, expected) and a wrong one as (expected,
the most confident class found, or the "no detection" label when nothing was).

Everything is computed at query time from the metadata table: ground truth that arrives hours
after its inference (the normal case) counts from the moment it is attached.

This module holds the settings and the arithmetic on counts; the store does the counting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from inferwatch.ingest.fields import FieldName, FieldValue

# 95% two-sided.
_Z = 1.959963984540054

# The calibration's bins unless asked otherwise; the DuckDB store's hourly sums hold these.
DEFAULT_BINS = 10

DEFAULT_FAIL_VALUES = ("failed", "fail", "ng", "reject", "rejected", "defect", "false", "no")

# Operator feedback (docs/vision-events.md): the latest verdict on an event, kept as metadata of the
# event id, so of the inferences of its images. As a label field it needs no setting: `correct`
# says the model's most confident class (or "no detection") was right, `incorrect` that it was
# wrong, `inconclusive` says nothing and is not counted.
FEEDBACK_FIELD = "ve.feedback"
VERDICTS = ("correct", "incorrect", "inconclusive")
COUNTED_VERDICTS = ("correct", "incorrect")
WRONG_PREFIX = "not "  # an `incorrect` verdict's expected class: "not <what the model said>"


class GroundTruth(msgspec.Struct, forbid_unknown_fields=True):
    """A model's ground-truth setting, as the API takes and answers it."""

    label_field: FieldName
    label_map: dict[FieldValue, FieldValue] = {}
    no_detection_label: FieldValue = "none"
    confidence_threshold: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    pass_field: FieldName | None = None
    fail_values: Annotated[list[FieldValue], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=lambda: list(DEFAULT_FAIL_VALUES))


def feedback_setting() -> GroundTruth:
    """The setting a model without one is measured by: its operator feedback."""
    return GroundTruth(label_field=FEEDBACK_FIELD)


def is_feedback(setting: GroundTruth) -> bool:
    """Whether the label field is the feedback verdict, read as right/wrong rather than a class."""
    return setting.label_field == FEEDBACK_FIELD


@dataclass(frozen=True, slots=True)
class Counts:
    """What the store counted over the filtered inferences."""

    inferences: int
    # (expected, predicted) -> count, over labelled inferences
    confusion: dict[tuple[str, str], int]
    # bucket start (ISO), labelled, correct
    over_time: list[tuple[str, int, int]]
    # group value, labelled, correct (empty without a `by` field)
    by_group: list[tuple[str, int, int]]
    # bin index, labelled, correct, mean top confidence
    calibration: list[tuple[int, int, int, float | None]]
    # (flagged, failed) -> count, over inferences with a pass/fail value
    inspection: dict[tuple[bool, bool], int]


def wilson(successes: int, n: int) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion: honest at small n and near 0 or 1, where the
    normal approximation gives intervals outside [0, 1]."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def report(counts: Counts, setting: GroundTruth, bins: int) -> dict[str, Any]:
    """The performance answer: accuracy with its interval, coverage, confusion matrix, per-class
    precision/recall/F1, accuracy over time and per group, calibration, inspection table."""
    labelled = sum(counts.confusion.values())
    correct = sum(n for (e, p), n in counts.confusion.items() if e == p)
    labels = sorted({e for e, _ in counts.confusion} | {p for _, p in counts.confusion})
    matrix = [[counts.confusion.get((e, p), 0) for p in labels] for e in labels]
    normalised = [[round(c / sum(row), 6) if sum(row) else 0.0 for c in row] for row in matrix]
    per_class = []
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall > 0 else None)
        if support == 0 and predicted == 0:
            continue
        per_class.append({"class": label, "support": support, "predicted": predicted, "true_positives": tp,
                          "precision": precision, "recall": recall, "f1": f1})
    return {
        "label_field": setting.label_field,
        "setting": msgspec.to_builtins(setting),
        "inferences": counts.inferences,
        "labelled": labelled,
        "coverage": _ratio(labelled, counts.inferences),
        "correct": correct,
        "accuracy": _ratio(correct, labelled),
        "accuracy_ci95": wilson(correct, labelled),
        "confusion_matrix": {"labels": labels, "counts": matrix, "row_normalised": normalised},
        "per_class": per_class,
        "over_time": [{"time": t, "labelled": n, "correct": c, "accuracy": _ratio(c, n)}
                      for t, n, c in counts.over_time],
        "by_group": [{"value": v, "labelled": n, "correct": c, "accuracy": _ratio(c, n), "accuracy_ci95": wilson(c, n)}
                     for v, n, c in counts.by_group],
        "calibration": [{"from": b / bins, "to": (b + 1) / bins, "labelled": n, "correct": c,
                         "accuracy": _ratio(c, n), "avg_confidence": conf}
                        for b, n, c, conf in counts.calibration],
        "inspection": _inspection(counts.inspection, setting),
    }


def _inspection(table: dict[tuple[bool, bool], int], setting: GroundTruth) -> dict[str, Any] | None:
    """The model as an inspector: it flags (finds something) vs the operation failed."""
    if setting.pass_field is None:
        return None
    tp, fp = table.get((True, True), 0), table.get((True, False), 0)
    fn, tn = table.get((False, True), 0), table.get((False, False), 0)
    return {
        "field": setting.pass_field,
        "fail_values": setting.fail_values,
        "flagged_and_failed": tp, "flagged_and_passed": fp,
        "missed_failures": fn, "clear_and_passed": tn,
        "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
        "inspected": tp + fp + fn + tn,
    }
