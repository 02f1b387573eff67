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


def _frames(sharpness: list[float], **more: list[float]) -> list[drift.SampleRow]:
    """Inferences without predictions, each with its metadata numbers."""
    return [drift.SampleRow(0, 0.02, 640, 480, [], [], [], [],
                            {"image_sharpness": s, **{k: v[i] for k, v in more.items()}})
            for i, s in enumerate(sharpness)]


def test_numeric_metadata_is_a_feature() -> None:
    """`meta.<field>` is scored like the continuous features, after the class mix; a field only
    one window holds is reported and never flagged."""
    rng = random.Random(3)
    sharp = [rng.gauss(400, 40) for _ in range(200)]
    blurred = [rng.gauss(40, 4) for _ in range(200)]
    steady = [rng.gauss(0.5, 0.05) for _ in range(200)]
    result = drift.compare(_frames(sharp, image_brightness=steady),
                           _frames(blurred, image_brightness=[rng.gauss(0.5, 0.05) for _ in range(200)]))
    features = {f["feature"]: f for f in result["features"]}
    assert [f["feature"] for f in result["features"]][5:] == ["class_mix", "meta.image_brightness",
                                                              "meta.image_sharpness"]
    assert features["meta.image_sharpness"]["drifted"] is True
    assert features["meta.image_sharpness"]["current"]["mean"] == pytest.approx(40, rel=0.1)
    assert features["meta.image_brightness"]["drifted"] is False
    assert result["drifted"] is True and result["score"] == features["meta.image_sharpness"]["score"]
    score = drift.feature_score(_frames(sharp), _frames(blurred), "meta.image_sharpness")
    assert score is not None and score > drift.PSI_THRESHOLD
    # A field the reference lacks: counted, not scored; a field neither holds: None.
    only_now = drift.compare(_frames(sharp), _frames(sharp, lux=steady))
    lux = next(f for f in only_now["features"] if f["feature"] == "meta.lux")
    assert (lux["reference"]["n"], lux["current"]["n"], lux["drifted"]) == (0, 200, False)
    assert drift.feature_score(_frames(sharp), _frames(sharp), "meta.nothing") is None


def test_feature_names() -> None:
    assert all(drift.is_feature(f) for f in (*drift.FEATURES, "meta.image_sharpness", "meta.a.b"))
    assert not any(drift.is_feature(f) for f in ("meta.", "sharpness", "", "Confidence"))
    assert drift.meta_field("meta.image_sharpness") == "image_sharpness"
    assert drift.meta_field("confidence") is None


def test_at_most_so_many_metadata_features() -> None:
    many = {f"f{i:02d}": [float(j) for j in range(40)] for i in range(drift.MAX_META_FEATURES + 5)}
    rows = _frames([1.0] * 40, **many)
    names = [f["feature"] for f in drift.compare(rows, rows)["features"] if f["feature"].startswith("meta.")]
    assert len(names) == drift.MAX_META_FEATURES and names == sorted(names)
