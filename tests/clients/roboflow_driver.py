"""Runs Roboflow's `roboflow-slim` SDK, unchanged, against inferwatch: every Vision Events method
of its `Workspace`, in the order a user would call them. Configured as a user configures it: the
environment's API_URL (read when `roboflow` is imported) and the key as argv[1]; argv[2] is an
image to upload. Prints one JSON object of what each call returned, for the test to check.

Run in a subprocess by tests/e2e/test_roboflow_sdk.py with .venv/roboflow-slim on PYTHONPATH.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import roboflow
from roboflow.adapters.rfapi import RoboflowError


def main(key: str, image: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rf = roboflow.Roboflow(api_key=key)
    ws = rf.workspace()
    out["workspace"] = {"name": ws.name, "url": ws.url}
    created = ws.create_vision_event_use_case("sdk line")
    uc = created["id"]
    out["created"] = created
    out["renamed"] = ws.rename_vision_event_use_case(uc, "sdk line 2")
    out["uploaded"] = ws.upload_vision_event_image(image, name="n.png", metadata={"camera": "c1"})
    out["uploaded_bare"] = ws.upload_vision_event_image(image)
    source = out["uploaded"]["sourceId"]
    now = datetime.now(UTC)
    out["written"] = ws.write_vision_event({
        "eventId": "sdk-1", "eventType": "quality_check", "useCaseId": uc, "timestamp": now.isoformat(),
        "deviceId": "cam", "eventData": {"result": "fail", "externalId": "lot-1"},
        "customMetadata": {"temperature": 151.5, "operator": "ana"},
        "images": [{"sourceId": source, "label": "workflow", "objectDetections": [
            {"class": "scratch", "x": 40, "y": 30, "width": 10, "height": 8, "confidence": 0.9}]}],
    })
    batch = [{"eventId": f"sdk-b{i}", "eventType": ("custom", "safety_alert")[i % 2], "useCaseId": uc,
              "timestamp": (now - timedelta(minutes=i + 1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
              "customMetadata": {"temperature": 140 + i}} for i in range(12)]
    out["batch"] = ws.write_vision_events_batch(batch)
    out["query"] = ws.query_vision_events(uc, event_type="quality_check", limit=5,
                                          deviceId={"operator": "eq", "value": "cam"})
    out["query_filtered"] = ws.query_vision_events(
        uc, event_types=["custom", "safety_alert"], start_time=(now - timedelta(minutes=6, seconds=30)).isoformat(),
        end_time=now.isoformat(),
        customMetadataFilters=[{"field": "temperature", "operator": "gte", "value": 142, "type": "number"}])
    out["pages"] = [[e["eventId"] for e in page] for page in ws.query_all_vision_events(uc, limit=5)]
    out["schema"] = ws.get_vision_event_metadata_schema(uc)
    out["listed"] = ws.list_vision_event_use_cases()
    # A misspelt field is stored with a warning; the SDK passes the warnings filter through.
    out["warned"] = ws.write_vision_event({"eventId": "sdk-typo", "eventType": "custom", "useCaseId": uc,
                                           "timestamp": now.isoformat(), "customMetdata": {"line": "a"}})
    out["with_warnings"] = ws.query_vision_events(uc, warnings=True)
    out["without_warnings"] = ws.query_vision_events(uc, warnings=False, limit=3)
    out["archived"] = ws.archive_vision_event_use_case(uc)
    out["listed_inactive"] = ws.list_vision_event_use_cases(status="inactive")
    try:
        ws.write_vision_event({**batch[0], "eventId": "sdk-late"})
    except RoboflowError as exc:
        out["refused"] = str(exc)
    out["unarchived"] = ws.unarchive_vision_event_use_case(uc)
    try:
        ws.unarchive_vision_event_use_case(uc)
    except RoboflowError as exc:
        out["not_archived"] = str(exc)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
