"""The evaluator: measures every enabled rule when it is due, moves its state, notifies.

One thread in the server process wakes every `alert_interval_s`, and evaluates each rule whose
`every_s` has passed since its last evaluation (`evaluate_now` evaluates them all at once: the
admin route, for operators and tests). A rule fires once on entering warning or critical (also
warning -> critical) and once on recovering to ok; staying in a state sends nothing. Every change
is kept as an event, notified or not: a change past the rule's caps (notifications in the last
hour, the last day) is recorded as suppressed.

Reads go to the store directly (each call has its own cursor); state and events are written
through the writer, like every write, after the channels were tried: a crash between the two
sends a notification again rather than never.

Metric values reuse the store's reads: totals (count, times, confidence), distributions (class
share and count), devices (silent ones), drift samples (PSI against the window before, numeric
metadata fields among the features), a metadata field's numeric figures (its average) and the
performance counts (accuracy from ground truth).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from inferwatch import drift
from inferwatch.alerts.channels import TIMEOUT_S, Smtp, deliver
from inferwatch.alerts.rules import RULE_DECODER, Rule, masked
from inferwatch.diskspace import DiskGuard
from inferwatch.ingest.writer import Writer
from inferwatch.periodic import Periodic
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState, Store
from inferwatch.store.rows import iso, now_utc

log = logging.getLogger(__name__)
DRIFT_SAMPLE = 5000


def scope(rule: Rule, start: datetime, end: datetime, with_class: bool = True) -> Filters:
    """The rule's slice of the inferences over [start, end)."""
    return Filters(
        start=start.replace(tzinfo=UTC), end=end.replace(tzinfo=UTC),
        model_ids=(rule.model_id,) if rule.model_id else (),
        device_ids=(rule.device_id,) if rule.device_id else (),
        classes=(rule.class_,) if with_class and rule.class_ else (),
        meta=tuple(MetaTerm.equal(name, value) for name, value in sorted(rule.meta.items())),
    )


def measure(store: Store, ws: int, rule: Rule, now: datetime, disk: DiskGuard | None = None) -> float | None:
    """The rule's metric over the window ending now; None when the window has no data for it."""
    start = now - timedelta(seconds=rule.window_s)
    metric = rule.metric
    if metric == "disk_free_bytes":  # the server's, not the window's: what is free now
        return None if disk is None else float(disk.space().free)
    if metric in ("inference_count", "avg_inference_time", "p95_inference_time", "avg_confidence"):
        totals = store.totals(ws, scope(rule, start, now))
        key = "inferences" if metric == "inference_count" else metric
        value = getattr(totals, key)
        return None if value is None else float(value)
    if metric in ("class_share", "class_count"):
        classes = store.distributions(ws, scope(rule, start, now, with_class=False), 1).classes
        total = sum(c.predictions for c in classes)
        mine = sum(c.predictions for c in classes if c.name == rule.class_)
        if metric == "class_count":
            return float(mine)
        return mine / total if total else None
    if metric == "devices_silent":
        devices = store.devices(ws, start.replace(tzinfo=UTC), now.replace(tzinfo=UTC))
        return float(sum(1 for d in devices if d.inferences == 0
                         and (rule.device_id is None or d.device_id == rule.device_id)))
    if metric == "drift_score":
        field = drift.meta_field(rule.drift_feature)
        numbers = (field,) if field is not None else ()
        current = store.drift_sample(ws, scope(rule, start, now), DRIFT_SAMPLE, numbers)
        reference = store.drift_sample(ws, scope(rule, start - (now - start), start), DRIFT_SAMPLE, numbers)
        return drift.feature_score(reference, current, rule.drift_feature)
    if metric == "metadata_average":
        assert rule.field is not None
        figures = store.numeric_figures(ws, scope(rule, start, now), rule.field, None, None)
        return figures[0].avg if figures and figures[0].avg is not None else None
    if metric == "accuracy":
        assert rule.model_id is not None
        setting = store.ground_truth(ws, rule.model_id)
        if setting is None:
            return None
        counts = store.performance_counts(ws, scope(rule, start, now), setting, now - start, None, 1)
        labelled = sum(counts.confusion.values())
        correct = sum(n for (e, p), n in counts.confusion.items() if e == p)
        return correct / labelled if labelled else None
    raise AssertionError(f"unknown metric {metric}")


class Evaluator:
    def __init__(self, store: Store, writer: Writer, interval_s: float, smtp: Smtp | None) -> None:
        self._store = store
        self._writer = writer
        self._smtp = smtp
        self._lock = threading.Lock()  # the schedule and `evaluate_now` never run at once
        self._schedule = Periodic("alerts", interval_s, lambda: self.tick(force=False))
        self._http = httpx.Client(timeout=TIMEOUT_S)

    def start(self) -> None:
        self._schedule.start()

    def stop(self) -> None:
        """Stops after the rule under evaluation (before the writer stops)."""
        self._schedule.stop()
        self._http.close()

    def evaluate_now(self) -> dict[str, int]:
        """Every enabled rule, due or not."""
        return self.tick(force=True)

    def tick(self, force: bool) -> dict[str, int]:
        with self._lock:
            now = now_utc()
            slugs = {w.id: w.slug for w in self._store.workspaces()}
            states: dict[int, dict[str, AlertState]] = {}
            summary = {"evaluated": 0, "changed": 0, "notified": 0}
            for record in self._store.alert_rules(None):
                if self._schedule.stopping and not force:
                    break
                if record.ws not in states:
                    states[record.ws] = self._store.alert_states(record.ws)
                state = states[record.ws].get(record.rule_id)
                try:
                    rule = RULE_DECODER.decode(record.spec)
                except msgspec.DecodeError:
                    log.error("alert rule %s of workspace %d cannot be read", record.rule_id, record.ws)
                    continue
                if not rule.enabled:
                    continue
                if not force and state is not None and (now - state.evaluated_at).total_seconds() < rule.every_s:
                    continue
                try:
                    changed, notified = self._evaluate(record, rule, state, slugs.get(record.ws, ""), now)
                except Exception:
                    log.exception("alert rule %s of workspace %d failed", record.rule_id, record.ws)
                    continue
                summary["evaluated"] += 1
                summary["changed"] += changed
                summary["notified"] += notified
            return summary

    def _evaluate(self, record: AlertRuleRecord, rule: Rule, state: AlertState | None, slug: str,
                  now: datetime) -> tuple[bool, bool]:
        ws, rule_id = record.ws, record.rule_id
        value = measure(self._store, ws, rule, now, self._writer.disk)
        old = state.state if state is not None else "ok"
        if value is not None:
            new: str = rule.level(value)
        else:
            new = old if rule.no_data == "keep" else rule.no_data
        if new == old:
            since = state.since if state is not None else now
            self._writer.maintain(lambda s: s.set_alert_state(ws, rule_id, AlertState(old, since, value, now)))
            return False, False
        kind = "recovered" if new == "ok" else "firing"
        sent_hour = self._store.notifications_since(ws, rule_id, now - timedelta(hours=1))
        sent_day = self._store.notifications_since(ws, rule_id, now - timedelta(days=1))
        detail: dict[str, Any]
        if sent_hour >= rule.max_per_hour or sent_day >= rule.max_per_day:
            detail = {"kind": kind, "suppressed": f"cap: {sent_hour} notifications in the last hour,"
                                                  f" {sent_day} in the last day"}
            notified = False
        elif not rule.channels:
            detail = {"kind": kind, "suppressed": "no channels"}
            notified = False
        else:
            event = self.payload(kind, slug, rule_id, rule, new, old, value, now)
            detail = {"kind": kind, "channels": [deliver(c, event, self._smtp, self._http) for c in rule.channels]}
            notified = True
        text = msgspec.json.encode(detail).decode()

        def write(s: Store) -> None:
            s.set_alert_state(ws, rule_id, AlertState(new, now, value, now))
            s.add_alert_event(AlertEvent(ws, rule_id, now, new, old, value, notified, text))

        self._writer.maintain(write)
        return True, notified

    @staticmethod
    def payload(kind: str, slug: str, rule_id: str, rule: Rule, state: str, previous: str, value: float | None,
                now: datetime) -> dict[str, Any]:
        """What every channel is told (the webhook's JSON body, as is)."""
        described = msgspec.to_builtins(masked(rule))
        described.pop("channels", None)
        return {
            "kind": kind, "workspace": slug, "rule_id": rule_id, "rule": described, "state": state,
            "previous": previous, "value": value, "at": iso(now),
            "window": {"from": iso(now - timedelta(seconds=rule.window_s)), "to": iso(now)},
        }
