"""Operator feedback over HTTP: an `operator_feedback` event reviews an event the workspace holds
(else a 400 that stores nothing), each event keeps its history and its latest verdict, the query
filters on that verdict, and the verdicts measure the model's accuracy with no ground-truth setting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import EVER, Workspace, list_all
from tests.e2e.test_vision_events import detections, event, ids, png, query, use_case


def feedback(uc: str, event_id: str, related: str, verdict: str, comment: str | None = None,
             minutes_ago: float = 0.5) -> dict[str, Any]:
    body = event(uc, event_id, minutes_ago, eventType="operator_feedback",
                 eventData={"relatedEventId": related, "feedback": verdict})
    if comment is not None:
        body["comment"] = comment
    return body


def performance(ws: Workspace, model_id: str) -> dict[str, Any]:
    reply = ws.client.get(f"{ws.api}/performance", params={**EVER, "model_id": model_id})
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


@pytest.fixture
def reviewed(ws: Workspace) -> tuple[Workspace, str]:
    """Four events with an image and a detection each (model `line-model`), one of them reviewed."""
    uc = use_case(ws)
    source = ws.client.post("/vision-events/upload", files={"file": ("a.png", png(), "image/png")}).json()["sourceId"]
    batch = [event(uc, f"e{i}", minutes_ago=10 - i, workflowId="line-model",
                   images=[{"sourceId": source, "objectDetections": detections(1)}]) for i in range(4)]
    assert ws.client.post("/vision-events/batch", json={"events": batch}).status_code == 201
    return ws, uc


def test_feedback_must_review_an_event_of_the_workspace(reviewed: tuple[Workspace, str], other: Workspace) -> None:
    ws, uc = reviewed
    before = ids(ws, uc)
    for body, field in (
        (feedback(uc, "f1", "missing", "correct"), "eventData.relatedEventId"),
        (feedback(uc, "f1", "e1", "great"), "eventData.feedback"),
        (feedback(uc, "f1", "f1", "correct"), "eventData.relatedEventId"),
        ({**feedback(uc, "f1", "e1", "correct"), "eventData": {"feedback": "correct"}}, "eventData.relatedEventId"),
    ):
        refused = ws.client.post("/vision-events", json=body)
        assert refused.status_code == 400, refused.text
        assert set(refused.json()) >= {"error", "detail"} and field in refused.json()["detail"]
    # Another workspace's event is no event here; inside a batch the refusal names the event.
    other_uc = use_case(other)
    refused = other.client.post("/vision-events/batch", json={"events": [
        event(other_uc, "fine"), feedback(other_uc, "f2", "e1", "correct")]})
    assert refused.status_code == 400 and "events[1].eventData.relatedEventId" in refused.json()["detail"]
    assert ids(other, other_uc) == []
    assert ids(ws, uc) == before
    # An event and its review may travel in one batch.
    both = [event(uc, "e9"), feedback(uc, "f9", "e9", "inconclusive")]
    assert ws.client.post("/vision-events/batch", json={"events": both}).status_code == 201


def test_the_latest_verdict_is_a_filter_and_the_history_is_kept(reviewed: tuple[Workspace, str]) -> None:
    ws, uc = reviewed
    for body in (feedback(uc, "f1", "e1", "incorrect", "<b>missed a scratch</b>"),
                 feedback(uc, "f2", "e1", "correct", "looked again"),
                 feedback(uc, "f3", "e2", "incorrect"),
                 feedback(uc, "f4", "e3", "inconclusive")):
        assert ws.client.post("/vision-events", json=body).status_code == 201
    assert ids(ws, uc, feedback=["correct"]) == ["e1"]
    assert ids(ws, uc, feedback=["incorrect", "inconclusive"]) == ["e3", "e2"]
    assert ids(ws, uc, feedback=["none"], eventType="quality_check") == ["e0"]
    assert ids(ws, uc, feedback=["none"], eventType="operator_feedback") == ["f4", "f3", "f2", "f1"]
    bad = ws.client.post("/vision-events/query", json={"useCaseId": uc, "feedback": ["maybe"]})
    assert bad.status_code == 400 and "feedback" in bad.json()["detail"]
    # The verdict is metadata of the reviewed event: the native API filters on it too.
    assert [row["inference_id"] for row in list_all(ws, **{"meta.ve.feedback": "incorrect"})] == ["e2"]
    # The feedback events themselves are events of the query, comments as sent.
    comments = [e.get("comment") for e in query(ws, uc, eventType="operator_feedback")["events"]]
    assert comments == [None, None, "looked again", "<b>missed a scratch</b>"]


def test_verdicts_measure_accuracy_without_a_setting(reviewed: tuple[Workspace, str]) -> None:
    ws, uc = reviewed
    assert performance(ws, "line-model")["labelled"] == 0
    for body in (feedback(uc, "f1", "e0", "correct"), feedback(uc, "f2", "e1", "correct"),
                 feedback(uc, "f3", "e2", "incorrect"), feedback(uc, "f4", "e3", "inconclusive")):
        assert ws.client.post("/vision-events", json=body).status_code == 201
    body = performance(ws, "line-model")
    assert (body["labelled"], body["correct"], body["accuracy"]) == (3, 2, 2 / 3)
    assert body["label_field"] == "ve.feedback"
    assert body["confusion_matrix"]["labels"] == ["not scratch", "scratch"]
    # A changed verdict changes the figure: the latest one counts.
    assert ws.client.post("/vision-events", json=feedback(uc, "f5", "e2", "correct")).status_code == 201
    assert performance(ws, "line-model")["accuracy"] == 1.0
