"""The rule model on its own: levels on either side of the thresholds, secrets never answered but
kept, the SMTP URL's parts."""

from __future__ import annotations

import re

import msgspec
import pytest

from inferwatch.alerts.channels import Smtp, signature
from inferwatch.alerts.rules import RULE_DECODER, SECRET_MASK, Rule, Webhook, keep_secrets, masked


def rule(**fields: object) -> Rule:
    base = {"name": "r", "metric": "avg_confidence", "condition": "below", "warning": 0.5, "critical": 0.2}
    return RULE_DECODER.decode(msgspec.json.encode({**base, **fields}))


def test_levels() -> None:
    below = rule()
    assert [below.level(v) for v in (0.9, 0.5, 0.49, 0.2, 0.1)] == ["ok", "ok", "warning", "warning", "critical"]
    above = rule(metric="inference_count", condition="above", warning=10, critical=None)
    assert [above.level(v) for v in (10, 11, 1e9)] == ["ok", "warning", "warning"]
    only_critical = rule(warning=None)
    assert [only_critical.level(v) for v in (0.3, 0.1)] == ["ok", "critical"]


def test_secrets_are_masked_and_kept() -> None:
    stored = rule(channels=[{"type": "webhook", "url": "http://a/1", "secret": "k1"},
                            {"type": "webhook", "url": "http://a/2"}])
    shown = msgspec.to_builtins(masked(stored))
    assert [c.get("secret") for c in shown["channels"]] == [SECRET_MASK, None]
    again = keep_secrets(RULE_DECODER.decode(msgspec.json.encode(shown)), stored)
    assert again.channels == stored.channels
    changed = keep_secrets(rule(channels=[{"type": "webhook", "url": "http://a/1", "secret": "k2"}]), stored)
    assert changed.channels == [Webhook("http://a/1", "k2")]


def test_smtp_url_and_signature() -> None:
    assert Smtp.from_url("smtp://mail:2525", "a@b") == Smtp("mail", 2525, "a@b")
    assert Smtp.from_url("smtps://u%40x:p%2F@mail", "a@b") == Smtp("mail", 465, "a@b", "u@x", "p/", tls=True)
    assert Smtp.from_url("smtp://mail?starttls=1", "a@b").starttls is True
    with pytest.raises(ValueError):
        Smtp.from_url("http://mail", "a@b")
    # RFC 4231 test case 2.
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_metadata_average_and_metadata_drift_features() -> None:
    """A rule on a numeric metadata field: its average (`field`), or its drift (`meta.<field>`);
    what is wrong is said with the field's name."""
    average = rule(metric="metadata_average", field="image_sharpness", condition="below", warning=100, critical=20)
    assert (average.field, average.level(50), average.level(10)) == ("image_sharpness", "warning", "critical")
    assert rule(metric="drift_score", model_id="m/1", drift_feature="meta.image_sharpness").drift_feature == (
        "meta.image_sharpness")
    assert rule().drift_feature == "confidence" and rule().field is None
    for bad, named in (({"metric": "metadata_average"}, "`field`"),
                       ({"field": "image_sharpness"}, "`field`"),
                       ({"metric": "metadata_average", "field": ""}, "$.field"),
                       ({"metric": "metadata_average", "field": "x" * 200}, "$.field"),
                       ({"metric": "drift_score", "model_id": "m/1", "drift_feature": "sharpness"}, "drift_feature"),
                       ({"metric": "drift_score", "model_id": "m/1", "drift_feature": "meta."}, "drift_feature"),
                       ({"drift_feature": "meta.a\x01"}, "$.drift_feature")):
        with pytest.raises(msgspec.ValidationError, match=re.escape(named)):
            rule(**bad)
