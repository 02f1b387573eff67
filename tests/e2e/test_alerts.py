"""Alerts end to end: rules over HTTP, data that crosses a threshold and recovers, and what a real
webhook receiver, a Slack-format receiver and an SMTP sink (aiosmtpd), all on loopback ports
started here, were sent: exactly one firing and one recovery, a valid signature, caps respected.

Most tests evaluate through the admin route (`POST /admin/alerts/evaluate`), which returns once
every channel was tried, so nothing here waits on a clock; the scheduler's own test polls with a
deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import Workspace, box, ingest, item, open_workspace
from tests.server import Server, free_port

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

SECRET = "s3cret-for-tests"


class Receiver:
    """A real HTTP server taking POSTs; answers 500 to the next `fail_next` of them."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, str], bytes]] = []
        self.failed: list[bytes] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    fail = receiver.fail_next > 0
                    if fail:
                        receiver.fail_next -= 1
                        receiver.failed.append(body)
                    else:
                        receiver.messages.append((self.path, dict(self.headers.items()), body))
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def at(self, path: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(h, json.loads(b)) for p, h, b in self.messages if p == path]

    def raw(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.messages if p == path]


class Sink:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def subjects(self, to: str) -> list[str]:
        return [str(message_from_bytes(m.content)["Subject"]) for m in self.messages if to in m.rcpt_tos]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.http.shutdown()
    r.http.server_close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[Server]:
    """A server whose schedule never comes round during a test: tests evaluate through the route."""
    srv = Server(tmp_path_factory.mktemp("alerts") / "data", "--smtp-url",
                 f"smtp://127.0.0.1:{sink.port}", "--smtp-from", "alerts@plant.example",  # type: ignore[attr-defined]
                 "--alert-interval", "3600").start()
    yield srv
    srv.stop()


@pytest.fixture
def aws(alerting: Server) -> Iterator[Workspace]:
    with open_workspace(alerting, "alerts") as workspace:
        yield workspace


def evaluate(server: Server) -> dict[str, Any]:
    reply = server.admin("POST", "/alerts/evaluate")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def create(ws: Workspace, rule: dict[str, Any]) -> str:
    reply = ws.client.post(f"{ws.api}/alerts", json=rule)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def confident(prefix: str, n: int, confidence: float, model_id: str = "parts/1") -> list[dict[str, Any]]:
    return [item(f"{prefix}-{i}", model_id, predictions=[box("scratch", confidence)]) for i in range(n)]


def test_fires_once_recovers_once_on_every_channel(alerting: Server, aws: Workspace, receiver: Receiver,
                                                   sink: Sink) -> None:
    hook, slack = f"/hook/{aws.slug}", f"/slack/{aws.slug}"
    mailbox = f"qa-{aws.slug}@plant.example"
    rule_id = create(aws, {
        "name": "confidence low", "metric": "avg_confidence", "condition": "below", "warning": 0.5,
        "critical": 0.2, "window_s": 3600, "model_id": "parts/1",
        "channels": [{"type": "webhook", "url": receiver.url + hook, "secret": SECRET},
                     {"type": "slack", "url": receiver.url + slack},
                     {"type": "email", "to": [mailbox]}]})
    ingest(aws, confident("good", 20, 0.9))
    evaluate(alerting)
    assert receiver.at(hook) == [] and sink.subjects(mailbox) == []
    state = aws.client.get(f"{aws.api}/alerts/{rule_id}").json()
    assert state["state"] == "ok" and state["value"] == pytest.approx(0.9)

    ingest(aws, confident("bad", 60, 0.3))  # (20 x 0.9 + 60 x 0.3) / 80 = 0.45: warning
    evaluate(alerting)
    evaluate(alerting)  # still warning: nothing more is sent
    messages = receiver.at(hook)
    assert len(messages) == 1
    headers, body = messages[0]
    raw = receiver.raw(hook)[0][1]
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Inferwatch-Signature"] == expected
    assert headers["X-Inferwatch-Event"] == "firing"
    assert (body["kind"], body["state"], body["previous"], body["workspace"], body["rule_id"]) == (
        "firing", "warning", "ok", aws.slug, rule_id)
    assert body["value"] == pytest.approx(0.45)
    assert "secret" not in json.dumps(body["rule"]) and "channels" not in body["rule"]
    [(_, slack_body)] = receiver.at(slack)
    assert set(slack_body) == {"text"} and "confidence low" in slack_body["text"]
    assert sink.subjects(mailbox) == ["[inferwatch] WARNING: confidence low"]

    ingest(aws, confident("better", 200, 0.95))  # back above 0.5
    evaluate(alerting)
    evaluate(alerting)
    messages = receiver.at(hook)
    assert [m[1]["kind"] for m in messages] == ["firing", "recovered"]
    assert messages[1][1]["state"] == "ok" and messages[1][1]["previous"] == "warning"
    assert messages[1][0]["X-Inferwatch-Signature"] == "sha256=" + hmac.new(
        SECRET.encode(), receiver.raw(hook)[1][1], hashlib.sha256).hexdigest()
    assert len(receiver.at(slack)) == 2
    assert sink.subjects(mailbox) == ["[inferwatch] WARNING: confidence low", "[inferwatch] recovered: confidence low"]

    history = aws.client.get(f"{aws.api}/alerts/history", params={"rule_id": rule_id}).json()["events"]
    assert [(e["state"], e["previous"], e["notified"], e["kind"]) for e in history] == [
        ("ok", "warning", True, "recovered"), ("warning", "ok", True, "firing")]
    assert [c["ok"] for c in history[0]["channels"]] == [True, True, True]


def test_critical_after_warning_and_caps(alerting: Server, aws: Workspace, receiver: Receiver) -> None:
    """A rule flapping on every evaluation (its threshold moved each time) notifies at most
    max_per_hour times; the changes past the cap are in the history as suppressed."""
    hook = f"/caps/{aws.slug}"
    ingest(aws, confident("x", 50, 0.9, model_id="count/1"))
    rule: dict[str, Any] = {"name": "volume", "metric": "inference_count", "condition": "above", "warning": 10,
                            "critical": 40, "window_s": 3600, "model_id": "count/1", "max_per_hour": 3,
                            "channels": [{"type": "webhook", "url": receiver.url + hook, "secret": SECRET}]}
    rule_id = create(aws, {**rule, "warning": 100, "critical": 200})
    evaluate(alerting)
    # 50 inferences against (warning, critical): warning, critical, ok, critical, ok, critical, ok
    for warning, critical in ((45, 100), (10, 40), (100, 200), (10, 40), (100, 200), (10, 40), (100, 200)):
        reply = aws.client.put(f"{aws.api}/alerts/{rule_id}", json={**rule, "warning": warning,
                                                                     "critical": critical})
        assert reply.status_code == 200, reply.text
        evaluate(alerting)
    sent = [b for _, b in receiver.at(hook)]
    assert [(b["previous"], b["state"]) for b in sent] == [("ok", "warning"), ("warning", "critical"),
                                                          ("critical", "ok")]
    history = aws.client.get(f"{aws.api}/alerts/history", params={"rule_id": rule_id}).json()["events"]
    assert len(history) == 7
    assert [e["notified"] for e in reversed(history)] == [True, True, True, False, False, False, False]
    assert all(e["suppressed"].startswith("cap:") for e in history[:4])


def test_webhook_retried_with_the_same_signed_body(alerting: Server, aws: Workspace, receiver: Receiver) -> None:
    hook = f"/retry/{aws.slug}"
    ingest(aws, confident("r", 5, 0.9, model_id="retry/1"))
    create(aws, {"name": "any volume", "metric": "inference_count", "condition": "above", "warning": 1,
                 "model_id": "retry/1", "channels": [{"type": "webhook", "url": receiver.url + hook,
                                                      "secret": SECRET}]})
    with receiver.lock:
        receiver.fail_next = 2
        failed_before = len(receiver.failed)
    evaluate(alerting)
    [(headers, body)] = receiver.raw(hook)
    assert receiver.failed[failed_before:] == [body, body]
    assert headers["X-Inferwatch-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    [event] = aws.client.get(f"{aws.api}/alerts/history").json()["events"]
    assert event["channels"] == [{"type": "webhook", "ok": True, "attempts": 3, "status": 200}]


def test_no_data_class_share_and_silent_devices(alerting: Server, aws: Workspace) -> None:
    """Rules without channels still change state and keep history (suppressed: no channels)."""
    ingest(aws, [item(f"c{i}", "mix/1", device_id="cam-1", predictions=[box("ok" if i % 4 else "defect", 0.9)])
                 for i in range(40)])
    share = create(aws, {"name": "defects", "metric": "class_share", "class": "defect", "condition": "above",
                         "warning": 0.2, "model_id": "mix/1"})
    quiet = create(aws, {"name": "quiet", "metric": "avg_confidence", "condition": "below", "warning": 0.5,
                         "model_id": "nothing/1", "no_data": "critical"})
    keep = create(aws, {"name": "keep", "metric": "avg_confidence", "condition": "below", "warning": 0.5,
                        "model_id": "nothing/1", "no_data": "keep"})
    silent = create(aws, {"name": "silent", "metric": "devices_silent", "condition": "above", "warning": 0,
                          "window_s": 60})
    evaluate(alerting)
    states = {a["id"]: a for a in aws.client.get(f"{aws.api}/alerts").json()["alerts"]}
    assert states[share]["state"] == "warning" and states[share]["value"] == pytest.approx(0.25)
    assert states[quiet]["state"] == "critical" and states[quiet]["value"] is None
    assert states[keep]["state"] == "ok"
    assert states[silent]["state"] == "ok" and states[silent]["value"] == 0  # cam-1 just sent
    events = aws.client.get(f"{aws.api}/alerts/history").json()["events"]
    assert {(e["rule_id"], e["suppressed"]) for e in events} == {(share, "no channels"), (quiet, "no channels")}


def test_crud_validation_and_isolation(aws: Workspace, other: Workspace) -> None:
    good = {"name": "n", "metric": "avg_confidence", "condition": "below", "warning": 0.5,
            "channels": [{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "k"}]}
    rule_id = create(aws, good)
    listed = aws.client.get(f"{aws.api}/alerts").json()["alerts"]
    assert [a["id"] for a in listed] == [rule_id]
    assert listed[0]["rule"]["channels"][0]["secret"] == "(set)"  # never answered
    # Sent back as answered, the secret is kept; renamed, the rule changes.
    reply = aws.client.put(f"{aws.api}/alerts/{rule_id}", json={**listed[0]["rule"], "name": "renamed"})
    assert reply.status_code == 200 and reply.json()["rule"]["name"] == "renamed"
    for bad in ({**good, "metric": "nonsense"}, {**good, "warning": None}, {**good, "condition": "sideways"},
                {**good, "metric": "class_share"}, {**good, "channels": [{"type": "webhook", "url": "ftp://x"}]},
                {**good, "channels": [{"type": "email", "to": ["not-an-address"]}]},
                {**good, "critical": 0.9}, {**good, "every_s": 0}, {**good, "surprise": 1}):
        reply = aws.client.post(f"{aws.api}/alerts", json=bad)
        assert reply.status_code == 400, (bad, reply.text)
    assert other.client.get(f"{aws.api}/alerts").status_code == 403
    assert other.client.get(f"{other.api}/alerts/{rule_id}").status_code == 404
    assert other.client.delete(f"{other.api}/alerts/{rule_id}").status_code == 404
    assert aws.client.delete(f"{aws.api}/alerts/{rule_id}").status_code == 200
    assert aws.client.get(f"{aws.api}/alerts/{rule_id}").status_code == 404
    assert aws.client.get(f"{aws.api}/alerts").json()["alerts"] == []


def test_the_schedule_evaluates_on_its_own(tmp_path: Path, receiver: Receiver) -> None:
    """No evaluate route here: the evaluator's own schedule fires once, and does not fire again
    while the state holds."""
    srv = Server(tmp_path / "data", "--alert-interval", "0.1").start()
    try:
        with open_workspace(srv, "sched") as ws:
            hook = f"/sched/{ws.slug}"
            rule_id = create(ws, {"name": "busy", "metric": "inference_count", "condition": "above", "warning": 3,
                                  "every_s": 1, "channels": [{"type": "webhook", "url": receiver.url + hook}]})
            ingest(ws, confident("s", 10, 0.9))
            deadline = time.monotonic() + 30
            while not receiver.at(hook):
                assert time.monotonic() < deadline, "the schedule never fired"
                time.sleep(0.05)
            fired_at = ws.client.get(f"{ws.api}/alerts/{rule_id}").json()["evaluated_at"]
            # Wait for two more evaluations of the rule (its state's time moves on), then count again.
            seen: set[str] = set()
            while len(seen) < 2:
                assert time.monotonic() < deadline, "the schedule stopped evaluating"
                at = ws.client.get(f"{ws.api}/alerts/{rule_id}").json()["evaluated_at"]
                if at != fired_at:
                    seen.add(at)
                time.sleep(0.05)
            assert len(receiver.at(hook)) == 1
            assert "Signature" not in " ".join(receiver.at(hook)[0][0])  # no secret, no signature
    finally:
        srv.stop()


def test_no_evaluator_flag(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", "--no-evaluator").start()
    try:
        reply = srv.admin("POST", "/alerts/evaluate")
        assert reply.status_code == 400 and "--no-evaluator" in reply.text
    finally:
        srv.stop()


def test_drift_score_and_accuracy_metrics(alerting: Server, aws: Workspace) -> None:
    def ago(minutes: float) -> str:
        return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    # The hour before last: confident; the last hour: 0.3 less confident. Another model: stable.
    for model, drop in (("drifting/1", 0.3), ("steady/1", 0.0)):
        ingest(aws, [item(f"{model}-r{i}", model, timestamp=ago(70 + i % 40),
                          predictions=[box("a", 0.85 - i % 10 / 100)]) for i in range(100)])
        ingest(aws, [item(f"{model}-c{i}", model, timestamp=ago(5 + i % 40),
                          predictions=[box("a", 0.85 - drop - i % 10 / 100)]) for i in range(100)])
    rules = {model: create(aws, {"name": model, "metric": "drift_score", "condition": "above", "warning": 0.2,
                                 "window_s": 3600, "model_id": model}) for model in ("drifting/1", "steady/1")}
    # Accuracy from ground truth: 8 of 10 labelled verdicts right.
    items = [{"model_id": "paint/1", "inference_id": f"p{i}", "result": {
        "top": "blue", "confidence": 0.9, "predictions": [{"class": "blue", "confidence": 0.9}]}} for i in range(10)]
    ingest(aws, items)
    reply = aws.client.put(f"{aws.api}/ground-truth", params={"model_id": "paint/1"}, json={"label_field": "color"})
    assert reply.status_code == 200, reply.text
    aws.client.post(f"/{aws.slug}/inference-stats/metadata", json={"data": [
        {"inference_ids": [f"p{i}" for i in range(8)], "field_name": "color", "field_value": "blue"},
        {"inference_ids": ["p8", "p9"], "field_name": "color", "field_value": "green"}]}).raise_for_status()
    accuracy = create(aws, {"name": "acc", "metric": "accuracy", "condition": "below", "warning": 0.9,
                            "critical": 0.5, "model_id": "paint/1"})
    evaluate(alerting)
    states = {a["id"]: a for a in aws.client.get(f"{aws.api}/alerts").json()["alerts"]}
    assert states[rules["drifting/1"]]["state"] == "warning" and states[rules["drifting/1"]]["value"] > 0.2
    assert states[rules["steady/1"]]["state"] == "ok" and states[rules["steady/1"]]["value"] < 0.1
    assert states[accuracy]["state"] == "warning" and states[accuracy]["value"] == pytest.approx(0.8)


def test_metadata_average_over_http(alerting: Server, aws: Workspace) -> None:
    """A numeric metadata field's average over the window, sent as numbers or as strings that
    read as numbers; a rule missing its field, or naming a feature drift does not know, is a 400
    that says which field."""
    ingest(aws, [item(f"t{i}", "oven/1", metadata={"temperature": 150 + i % 3}) for i in range(9)])
    ingest(aws, [item(f"u{i}", "oven/1", metadata={"temperature": "160"}) for i in range(3)])
    hot = create(aws, {"name": "oven hot", "metric": "metadata_average", "field": "temperature",
                       "condition": "above", "warning": 152, "critical": 200, "model_id": "oven/1"})
    unknown = create(aws, {"name": "no such field", "metric": "metadata_average", "field": "humidity",
                           "condition": "above", "warning": 1, "model_id": "oven/1", "no_data": "keep"})
    evaluate(alerting)
    states = {a["id"]: a for a in aws.client.get(f"{aws.api}/alerts").json()["alerts"]}
    assert states[hot]["state"] == "warning" and states[hot]["value"] == pytest.approx((9 * 151 + 3 * 160) / 12)
    assert states[unknown]["state"] == "ok" and states[unknown]["value"] is None
    base = {"name": "n", "condition": "above", "warning": 1, "model_id": "oven/1"}
    for bad, named in (({"metric": "metadata_average"}, "`field`"),
                       ({"metric": "avg_confidence", "field": "temperature"}, "`field`"),
                       ({"metric": "metadata_average", "field": "t" * 500}, "$.field"),
                       ({"metric": "drift_score", "drift_feature": "temperature"}, "drift_feature")):
        reply = aws.client.post(f"{aws.api}/alerts", json={**base, **bad})
        assert reply.status_code == 400, (bad, reply.text)
        assert set(reply.json()) >= {"error", "detail"} and named in reply.json()["detail"], reply.text
