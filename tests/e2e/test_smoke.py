"""The quick-start walk-through: ingest, attach metadata, query it back."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES, Workspace


def test_ingest_attach_query(ws: Workspace) -> None:
    result = json.loads((FIXTURES / "response-object-detection.json").read_text())
    reply = ws.client.post(f"{ws.api}/inferences", json={"inferences": [{"model_id": "pcb/7", "result": result}]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"status": "ok", "accepted": 1, "inference_ids": [result["inference_id"]]}

    reply = ws.client.post(f"/{ws.slug}/inference-stats/metadata", json={
        "data": [{"inference_ids": [result["inference_id"]], "field_name": "line", "field_value": "3"}]})
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"

    rows = ws.client.get(f"{ws.api}/inferences", params={"meta.line": "3"}).json()["inferences"]
    assert [r["inference_id"] for r in rows] == [result["inference_id"]]
    assert rows[0]["metadata"] == {"line": "3"}
    assert [p["class"] for p in rows[0]["predictions"]] == [p["class"] for p in result["predictions"]]
