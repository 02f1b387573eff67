"""The rows a batch of Vision Events becomes (`vision_events.to_rows`): each event's custom-metadata
schema entries are its own, even where a batch's events share keys and values that compare equal
across types (`1 == True == 1.0` in Python)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from inferwatch.ingest.vision_events import Size, decode_one, to_rows

NOW = datetime.now(UTC)


def test_each_event_keeps_its_own_schema_entries() -> None:
    custom = [{"a": 1, "b": "x"}, {"a": "1", "b": "x"}, {"b": "x", "a": 1.0}, {"a": True}, {}, {"a": 1, "b": "x"}]
    prepared = []
    for i, metadata in enumerate(custom):
        body = {"eventId": f"e{i}", "eventType": "custom", "useCaseId": "uc",
                "timestamp": (NOW - timedelta(minutes=1)).isoformat(), "customMetadata": metadata}
        prepared.append((decode_one(msgspec.json.encode(body), NOW), "uc"))
    _, meta, events = to_rows(prepared, 1, {"": Size(None, None)}, 0)
    assert events.meta_types == [["number:a", "string:b"], ["string:a", "string:b"], ["number:a", "string:b"],
                                 ["boolean:a"], [], ["number:a", "string:b"]]
    typed = {(i, n): (v, k) for i, n, v, k in zip(meta.inference_id, meta.field_name, meta.field_value,
                                                  meta.field_type, strict=True)}
    assert typed[("e0", "a")] == ("1", "number") and typed[("e1", "a")] == ("1", "string")
    assert typed[("e3", "a")] == ("true", "boolean")
