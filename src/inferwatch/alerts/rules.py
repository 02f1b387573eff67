"""An alert rule as the API takes it and the store keeps it (the JSON of `Rule`).

A rule measures one metric over a rolling window, on a scope (model, device, class, metadata
values), compares it to a warning and a critical threshold, and notifies its channels when its
state changes: once on entering warning or critical, once on recovering. Caps bound how many
notifications a rule sends per hour and per day, whatever the data does.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from inferwatch import drift
from inferwatch.ingest import limits
from inferwatch.ingest.fields import FieldName, FieldValue

Metric = Literal[
    "inference_count",  # inferences in the window
    "avg_inference_time",  # seconds
    "p95_inference_time",  # seconds
    "avg_confidence",  # over predictions
    "class_share",  # predictions of `class` / all predictions, 0..1
    "class_count",  # predictions of `class`
    "devices_silent",  # devices known to the workspace with no inference in the window
    "drift_score",  # PSI of `drift_feature`: the window against the window before it
    "metadata_average",  # average of the numbers of metadata `field` over the window's inferences
    "accuracy",  # from ground truth (the model's setting), over labelled inferences
    "disk_free_bytes",  # free on the server's data volume now (the same for every workspace)
]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
State = Literal["ok", "warning", "critical"]
# One of drift.FEATURES or `meta.<field>` (a numeric metadata field), checked in Rule.__post_init__
# so the 400 names the choices rather than a pattern.
DriftFeature = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_FIELD_NAME_LEN + len(drift.META_PREFIX),
                                           pattern=r"^[^\x00-\x1f\x7f]+$")]

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=2048)]
Address = Annotated[str, msgspec.Meta(pattern=r"^[^@\s<>]+@[^@\s<>]+$", max_length=320)]
# What the API answers in place of a webhook's secret; sent back unchanged it keeps the stored one.
SECRET_MASK = "(set)"


class Webhook(msgspec.Struct, tag="webhook", forbid_unknown_fields=True):
    """POSTs the event as JSON; with a secret, `X-Inferwatch-Signature: sha256=<hex HMAC-SHA256
    of the body>`. Retried with backoff on connection errors, 429 and 5xx."""

    url: Url
    secret: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class Slack(msgspec.Struct, tag="slack", forbid_unknown_fields=True):
    """A Slack incoming webhook (`{"text": ...}`), retried like a webhook."""

    url: Url


class Email(msgspec.Struct, tag="email", forbid_unknown_fields=True):
    """A mail through the server's SMTP server (`--smtp-url`)."""

    to: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=50)]


Channel = Webhook | Slack | Email


class Rule(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    name: Text
    metric: Metric
    condition: Literal["above", "below"]
    warning: float | None = None
    critical: float | None = None
    window_s: Annotated[int, msgspec.Meta(ge=1, le=30 * 86400)] = 1800
    every_s: Annotated[int, msgspec.Meta(ge=1, le=86400)] = 60
    model_id: Text | None = None
    device_id: Text | None = None
    class_: Text | None = msgspec.field(default=None, name="class")
    meta: Annotated[dict[FieldName, FieldValue], msgspec.Meta(max_length=16)] = {}
    drift_feature: DriftFeature = "confidence"
    # The metadata field metadata_average reads: its values' numbers, sent as numbers or as
    # strings that read as numbers, as numeric=meta.<field> on /stats reads them.
    field: FieldName | None = None
    # What a window without data means: ok, keep the state it has, or a level.
    no_data: Literal["ok", "keep", "warning", "critical"] = "ok"
    max_per_hour: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 6
    max_per_day: Annotated[int, msgspec.Meta(ge=0, le=10000)] = 24
    channels: Annotated[list[Channel], msgspec.Meta(max_length=10)] = []
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.warning is None and self.critical is None:
            raise ValueError("give a warning or a critical threshold (or both)")
        if self.warning is not None and self.critical is not None:
            if self.condition == "above" and self.critical < self.warning:
                raise ValueError("above: the critical threshold must not be below the warning one")
            if self.condition == "below" and self.critical > self.warning:
                raise ValueError("below: the critical threshold must not be above the warning one")
        if self.metric in ("class_share", "class_count") and self.class_ is None:
            raise ValueError(f"{self.metric} needs `class`")
        if self.metric in ("drift_score", "accuracy") and self.model_id is None:
            raise ValueError(f"{self.metric} needs `model_id`")
        if self.metric == "metadata_average" and self.field is None:
            raise ValueError("metadata_average needs `field`: the metadata field whose numbers are averaged")
        if self.metric != "metadata_average" and self.field is not None:
            raise ValueError("`field` is for metadata_average (drift_score takes `drift_feature`: meta.<field>)")
        if not drift.is_feature(self.drift_feature):
            raise ValueError(f"drift_feature: one of {', '.join(drift.FEATURES)}, or meta.<field> for a numeric"
                             f" metadata field; not {self.drift_feature!r}")

    def level(self, value: float) -> State:
        """The state a measured value puts the rule in (critical wins)."""
        def crossed(threshold: float | None) -> bool:
            if threshold is None:
                return False
            return value > threshold if self.condition == "above" else value < threshold

        if crossed(self.critical):
            return "critical"
        if crossed(self.warning):
            return "warning"
        return "ok"


def masked(rule: Rule) -> Rule:
    """The rule as answered: webhook secrets replaced by SECRET_MASK."""
    channels: list[Channel] = [
        Webhook(c.url, SECRET_MASK) if isinstance(c, Webhook) and c.secret else c for c in rule.channels]
    return msgspec.structs.replace(rule, channels=channels)


def keep_secrets(new: Rule, old: Rule | None) -> Rule:
    """A rule sent back with SECRET_MASK keeps the stored secret of the webhook at the same URL."""
    stored = {c.url: c.secret for c in (old.channels if old else []) if isinstance(c, Webhook)}
    channels: list[Channel] = []
    for c in new.channels:
        if isinstance(c, Webhook) and c.secret == SECRET_MASK:
            c = Webhook(c.url, stored.get(c.url))
        channels.append(c)
    return msgspec.structs.replace(new, channels=channels)


RULE_DECODER = msgspec.json.Decoder(Rule)
