"""Ingestion warnings of one decoded event (`ingest/warnings.py`): each part that is stored but not
used as sent has its reason, naming its path; an event as Roboflow's clients send it has none;
the strict decoder tried first accepts and refuses exactly what the lenient one does, bar unknown
fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from inferwatch.errors import InvalidRequest
from inferwatch.ingest.vision_events import Event, Segmentation, decode_batch, decode_one
from inferwatch.ingest.warnings import EVENT_DATA, MAX_WARNINGS, strict_twin

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
BOX = {"class": "scratch", "x": 5, "y": 5, "width": 2, "height": 2, "confidence": 0.5}


def _event(**extra: Any) -> dict[str, Any]:
    return {"eventId": "e1", "eventType": "quality_check", "useCaseId": "uc", "timestamp": NOW.isoformat(), **extra}


def _warnings(**extra: Any) -> tuple[str, ...]:
    return decode_one(msgspec.json.encode(_event(**extra)), NOW).warnings


def test_every_field_as_the_clients_send_it_has_no_warning() -> None:
    full = _event(eventData={"result": "fail", "externalId": "lot", "confidence": 0.7}, deviceId="d", streamId="s",
                  workflowId="w", customMetadata={"t": 1.5, "ok": True, "line": "a"}, displayImagePosition=1,
                  comment="c", images=[
                      {"sourceId": "a", "inputSourceId": "b", "label": "workflow", "metadata": {"exposure": 1},
                       "objectDetections": [BOX],
                       "instanceSegmentations": [{**BOX, "points": [[1, 1], [2, 2], [3, 1]]}],
                       "keypoints": [{**BOX, "keypoints": [{"id": 1, "x": 1, "y": 2}, {"x": 3, "y": 4}]}]},
                      {"classifications": [{"class": "ok", "confidence": 0.9}]}])
    assert _warnings(**full) == ()
    for event_type, fields in EVENT_DATA.items():
        if event_type != "operator_feedback":
            data = {k: {str: "x", int: 3, float: 0.5}.get(v, v[0] if isinstance(v, tuple) else v)  # type: ignore[call-overload]
                    for k, v in fields.items()}
            assert _warnings(eventType=event_type, eventData=data) == (), event_type


def test_unknown_fields_at_every_level_are_named_by_path() -> None:
    assert _warnings(customMetdata={"a": 1}, images=[
        {"sourceID": "a", "objectDetections": [BOX, {**BOX, "clas": "x"}],
         "keypoints": [{**BOX, "keypoints": [{"x": 1, "y": 1, "name": "nose"}]}]}]) == (
        "customMetdata: unknown field, ignored (kept in the body)",
        "images[0].sourceID: unknown field, ignored (kept in the body)",
        "images[0].objectDetections[1].clas: unknown field, ignored (kept in the body)",
        "images[0].keypoints[0].keypoints[0].name: unknown field, ignored (kept in the body)")
    # A key that is no plain name is quoted, and cut.
    assert _warnings(**{"a b\n": 1, "k" * 300: 2}) == (
        '["a b\\n"]: unknown field, ignored (kept in the body)',
        f'["{"k" * 100}"…]: unknown field, ignored (kept in the body)')


def test_event_data_that_misfits_its_type_is_kept_and_warned() -> None:
    assert _warnings(eventData={"result": "PASS", "confidence": 2, "note": {"a": 1}, "tag": ""}) == (
        'eventData.result: expected "pass" or "fail", kept as sent',
        "eventData.confidence: expected a number from 0 to 1, kept as sent",
        "eventData.note: not a field of quality_check events (result, externalId, confidence), kept as sent",
        "eventData.note: an object, not a string, number or boolean, is not filterable (kept in the body)",
        "eventData.tag: not a field of quality_check events (result, externalId, confidence), kept as sent",
        "eventData.tag: an empty string is not filterable (kept in the body)")
    assert _warnings(eventType="inventory_count", eventData={"itemCount": True, "location": 3}) == (
        "eventData.itemCount: expected an integer, kept as sent", "eventData.location: expected a string, kept as sent")
    assert _warnings(eventType="custom", eventData={"value": None}) == (
        "eventData.value: expected a string, kept as sent",
        "eventData.value: null, not a string, number or boolean, is not filterable (kept in the body)")
    # operator_feedback's own fields stay limits; the dashboard's `reviewer` is one of its fields.
    review = {"eventType": "operator_feedback", "eventId": "f1"}
    assert _warnings(**review, eventData={"relatedEventId": "e1", "feedback": "correct", "reviewer": "k"}) == ()
    with pytest.raises(InvalidRequest, match=r"eventData\.feedback"):
        _warnings(**review, eventData={"relatedEventId": "e1", "feedback": "great"})


def test_repairs_and_what_is_not_filterable_are_warned() -> None:
    assert _warnings(displayImagePosition=2, images=[{"objectDetections": [BOX]}]) == (
        "displayImagePosition: 2 names no image (the event has 1); the first is shown",)
    assert _warnings(displayImagePosition=0) == ("displayImagePosition: 0 names no image (the event has 0); ignored",)
    assert _warnings(images=[{"objectDetections": [BOX], "classifications": [{"class": "a", "confidence": 1}]}]) == (
        "images[0].classifications: not predictions of the image's inference, which are its 1 boxes"
        " (kept in the body)",)
    assert _warnings(customMetadata={"a": "", "b": "x"}) == (
        "customMetadata.a: an empty string is not filterable (kept in the body)",)


def test_warnings_are_capped() -> None:
    found = _warnings(**{f"x{i}": i for i in range(MAX_WARNINGS + 50)})
    assert len(found) == MAX_WARNINGS and found[-1] == "and 51 more warnings"


def test_an_id_twice_in_a_batch_warns_on_the_version_stored() -> None:
    body = {"events": [_event(), _event(eventId="e2"), _event(comment="last")]}
    assert [p.warnings for p in decode_batch(msgspec.json.encode(body), NOW)] == [
        (), (), ("eventId: sent 2 times in this batch; this, the last, is stored",)]


@pytest.mark.parametrize("odd", [{}, {"extra": 1}, {"deviceId": "back\\slash"}, {"comment": "\x7f"}])
def test_a_batch_decodes_as_its_events_one_by_one(odd: dict[str, Any]) -> None:
    """A batch is decoded in one go when it can be (`_decode_whole`), and one event at a time when
    one of its events has an unknown field or a byte the fast decoder leaves to the strict one:
    either way each event, body, time and warning is what decoding it alone gives."""
    events = [_event(eventId="e0", customMetadata={"t": 1.5}, images=[{"objectDetections": [BOX]}]),
              _event(eventId="e1", **odd), _event(eventId="e2", eventData={"result": 3})]
    whole = decode_batch(msgspec.json.encode({"events": events}), NOW)
    alone = [decode_one(msgspec.json.encode(e), NOW, f"events[{i}].") for i, e in enumerate(events)]
    assert [(msgspec.json.encode(p.event), p.body, p.ts_us, p.warnings) for p in whole] == [
        (msgspec.json.encode(p.event), p.body, p.ts_us, p.warnings) for p in alone]
    assert whole[2].warnings and (whole[1].warnings != ()) == ("extra" in odd)


@pytest.mark.parametrize("body", [
    b'{"eventId": "e", "eventType": "nope", "useCaseId": "u", "timestamp": "2026-12-01T12:00:00Z"}',
    b'{"eventId": "e", "eventType": "custom", "useCaseId": "u", "timestamp": "2026-12-01T12:00:00Z", "x": 1,'
    b' "images": [{"objectDetections": [{"class": "a", "x": 1, "y": 1, "width": 1, "height": 1, "confidence": 2}]}]}',
    b'{"eventId": "e", "eventType": "custom", "useCaseId": "u", "timestamp": "2026-12-01T12:00:00Z",'
    b' "customMetadata": {"a.b": 1}}',
    b'[]',
])
def test_the_strict_decoder_refuses_what_the_lenient_one_refuses_and_says_the_same(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError) as lenient:
        msgspec.json.decode(body, type=Event)
    with pytest.raises(InvalidRequest) as refused:
        decode_one(body, NOW)
    assert refused.value.detail == str(lenient.value)


def test_the_strict_twin_decodes_the_same_objects() -> None:
    body = msgspec.json.encode(_event(eventData={"result": "pass"}, images=[
        {"sourceId": "a", "instanceSegmentations": [{**BOX, "points": [[1, 1], [2, 2], [3, 1]]}]}]))
    strict = msgspec.json.decode(body, type=strict_twin(Event))
    assert isinstance(strict, Event)
    assert isinstance(strict.images[0].instanceSegmentations[0], Segmentation)  # as `_predictions` reads it
    assert msgspec.json.encode(strict) == msgspec.json.encode(msgspec.json.decode(body, type=Event))
    with pytest.raises(msgspec.ValidationError, match="unknown field `extra`"):
        msgspec.json.decode(body[:-1] + b', "extra": 1}', type=strict_twin(Event))


@pytest.mark.parametrize(("extra", "path"), [
    ({"eventId": "e\u0001"}, "$.eventId"),
    ({"deviceId": "cam\u007f"}, "$.deviceId"),
    ({"customMetadata": {"note": "a\u0000b"}}, "$.customMetadata[...]"),
    ({"images": [{"objectDetections": [{**BOX, "class": "a\u0000"}]}]}, "$.images[0].objectDetections[0].class"),
])
def test_control_characters_are_refused_as_the_lenient_decoder_refuses_them(extra: dict[str, Any], path: str) -> None:
    # Escaped in JSON (`\u0001`), or DEL as a raw byte: the patterns the decoder skips for a body
    # with neither are still checked, with the same error.
    body = msgspec.json.encode(_event(**extra))
    assert b"\\u" in body or b"\x7f" in body
    with pytest.raises(msgspec.ValidationError) as lenient:
        msgspec.json.decode(body, type=Event)
    with pytest.raises(InvalidRequest) as refused:
        decode_one(body, NOW)
    assert refused.value.detail == str(lenient.value)
    assert path in refused.value.detail


def test_a_body_without_escapes_decodes_as_the_lenient_decoder_decodes_it() -> None:
    body = msgspec.json.encode(_event(deviceId="d", customMetadata={"t": 1.5, "line": "a b"}, comment="ok", images=[
        {"sourceId": "a", "label": "x", "objectDetections": [BOX],
         "classifications": [{"class": "c", "confidence": 1}]}]))
    assert b"\\" not in body
    decoded = decode_one(body, NOW).event
    assert msgspec.json.encode(decoded) == msgspec.json.encode(msgspec.json.decode(body, type=Event))
