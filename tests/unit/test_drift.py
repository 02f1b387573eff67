"""The drift arithmetic on its own: PSI of known distributions, thresholds, small samples."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from inferwatch import drift


def test_psi_of_known_shares() -> None:
    assert drift.psi([50, 50], [50, 50]) == 0.0
    # (0.9 - 0.5) ln(0.9/0.5) + (0.1 - 0.5) ln(0.1/0.5)
    assert drift.psi([50, 50], [90, 10]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5))
    # An empty bin is "almost never", not infinite.
    assert math.isfinite(drift.psi([10, 10], [20, 0]))


def test_small_samples_are_never_flagged() -> None:
    few = np.array([0.9] * (drift.MIN_SAMPLE - 1))
    result = drift.compare_feature("confidence", np.array([0.1] * 100), few)
    assert result["enough_data"] is False and result["drifted"] is False
    assert result["score"] > drift.PSI_THRESHOLD  # the figure is still reported


def test_ks_needs_a_large_statistic_as_well_as_a_small_p() -> None:
    rng = random.Random(5)
    a = np.array([rng.gauss(0.5, 0.1) for _ in range(20000)])
    b = np.array([rng.gauss(0.51, 0.1) for _ in range(20000)])  # significant, but trivial
    result = drift.compare_feature("confidence", a, b)
    ks = next(t for t in result["tests"] if t["test"] == "ks")
    assert ks["p_value"] < drift.KS_P_THRESHOLD and ks["score"] < drift.KS_MIN_STATISTIC
    assert result["drifted"] is False


def test_discrete_values_share_bins() -> None:
    ref = np.array([0, 1, 1, 2, 2, 2, 3] * 10, dtype=float)
    edges = drift.edges_for("detections", ref, ref + 1)
    assert list(edges) == sorted(set(edges)) and edges[0] == 0 and edges[-1] == 4
    assert drift.compare_feature("detections", ref, ref)["drifted"] is False
    assert drift.compare_feature("detections", ref, ref + 2)["drifted"] is True


def test_class_mix() -> None:
    same = drift.compare_classes(Counter(a=100, b=100), Counter(a=98, b=102))
    assert same["drifted"] is False
    gone = drift.compare_classes(Counter(a=100, b=100, c=100), Counter(a=150, b=150))
    assert gone["drifted"] is True and gone["current"]["histogram"] == [150, 150, 0]
