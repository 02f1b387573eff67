"""The in-memory per-model series: counts, histogram buckets, the cap, workspaces apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.ingest.rows import InferenceRows
from inferwatch.model_metrics import ModelSeries


def rows(*items: tuple[int, str, str | None, float | None, list[tuple[str, float]]]) -> InferenceRows:
    out = InferenceRows()
    for ws, model, device, time_s, predictions in items:
        out.ws.append(ws)
        out.inference_id.append(f"{len(out)}")
        out.model_id.append(model)
        out.device_id.append(device)
        out.inference_time.append(time_s)
        out.n_predictions.append(len(predictions))
        for cls, conf in predictions:
            out.p_class.append(cls)
            out.p_confidence.append(conf)
    return out


def scrape(series: ModelSeries, ws: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(series.collector(ws))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counts_and_buckets() -> None:
    series = ModelSeries(100)
    series.observe(rows((1, "m/1", "cam", 0.02, [("a", 0.3), ("b", 0.31)]), (1, "m/1", None, None, []),
                        (1, "m/2", "cam", 0.5, [("a", 1.0)])))
    series.observe(rows((1, "m/1", "cam", 0.02, [("a", 0.05)])))
    got = scrape(series, 1)
    assert got[("inferwatch_model_inferences_total", (("device_id", "cam"), ("model_id", "m/1")))] == 2
    assert got[("inferwatch_model_inferences_total", (("device_id", ""), ("model_id", "m/1")))] == 1
    assert got[("inferwatch_model_predictions_total", (("class", "a"), ("device_id", "cam"), ("model_id", "m/1")))] == 2
    bucket = "inferwatch_model_confidence_bucket"
    assert got[(bucket, (("le", "0.05"), ("model_id", "m/1")))] == 1  # a bound holds the value equal to it
    assert got[(bucket, (("le", "0.3"), ("model_id", "m/1")))] == 2
    assert got[(bucket, (("le", "0.35"), ("model_id", "m/1")))] == 3
    assert got[(bucket, (("le", "+Inf"), ("model_id", "m/1")))] == 3
    assert got[("inferwatch_model_confidence_sum", (("model_id", "m/1"),))] == 0.3 + 0.31 + 0.05
    assert got[(bucket, (("le", "0.95"), ("model_id", "m/2")))] == 0
    assert got[(bucket, (("le", "1.0"), ("model_id", "m/2")))] == 1
    # The untimed inference is in no time bucket.
    assert got[("inferwatch_model_inference_seconds_count", (("model_id", "m/1"),))] == 2
    assert got[("inferwatch_model_inference_seconds_bucket", (("le", "0.02"), ("model_id", "m/1")))] == 2
    assert scrape(series, 2) == {}


def test_values_past_the_cap_are_other_per_workspace() -> None:
    series = ModelSeries(2)
    series.observe(rows(*[(1, f"m/{i}", f"d{i}", 0.01, [(f"c{i}", 0.5)]) for i in range(4)],
                        (2, "m/9", "d9", 0.01, [("c9", 0.5)])))
    got = scrape(series, 1)
    inferences = {dict(labels)["model_id"]: v for (name, labels), v in got.items()
                  if name == "inferwatch_model_inferences_total"}
    assert inferences == {"m/0": 1, "m/1": 1, "other": 2}
    classes = {dict(labels)["class"] for (name, labels) in got if name == "inferwatch_model_predictions_total"}
    assert classes == {"c0", "c1", "other"}
    assert got[("inferwatch_model_confidence_count", (("model_id", "other"),))] == 2
    # Another workspace has a cap of its own.
    assert {dict(labels).get("model_id") for (name, labels) in scrape(series, 2)} == {"m/9"}


def test_label_values_survive_the_text_format() -> None:
    """Model, device and class names are the clients' text: quotes, backslashes, newlines and
    non-ASCII come back from Prometheus' parser as they were sent."""
    odd = 'pcb "v2"\\7\nnight ÿ'
    series = ModelSeries(100)
    series.observe(rows((1, odd, odd, 0.01, [(odd, 0.5)])))
    got = scrape(series, 1)
    assert got[("inferwatch_model_predictions_total", (("class", odd), ("device_id", odd), ("model_id", odd)))] == 1
    assert got[("inferwatch_model_confidence_count", (("model_id", odd),))] == 1
