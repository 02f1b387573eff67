"""Liveness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Workspace, attach, ingest, item


def _samples(web: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = web.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz(web: httpx.Client) -> None:
    reply = web.get("/healthz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert isinstance(body["schema_version"], int) and body["schema_version"] >= 1
    assert body["queue_rows"] == 0
    assert body["version"]


def test_metrics_count_requests_rows_and_commits(web: httpx.Client, ws: Workspace) -> None:
    before = _samples(web)
    route = "/api/v1/{workspace}/inferences"
    ingest(ws, [item(f"m{n}") for n in range(7)])
    ingest(ws, [item("m0")])  # a duplicate still travels through the writer
    attach(ws, [{"inference_ids": ["m1", "m2"], "field_name": "f", "field_value": "v"}])
    assert ws.client.post(f"{ws.api}/inferences", json={"inferences": [{"model_id": "m"}]}).status_code == 400
    ws.client.get(f"{ws.api}/inferences/m3")
    after = _samples(web)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("inferwatch_http_requests_total", method="POST", route=route, status="200") == 2
    assert delta("inferwatch_http_requests_total", method="POST", route=route, status="400") == 1
    assert delta("inferwatch_http_requests_total", method="GET", status="200",
                 route="/api/v1/{workspace}/inferences/{inference_id:path}") == 1
    assert delta("inferwatch_http_requests_total", method="POST", status="200",
                 route="/{workspace}/inference-stats/metadata") == 1
    assert delta("inferwatch_ingested_rows_total") == 8
    assert delta("inferwatch_metadata_rows_total") == 2
    assert delta("inferwatch_commit_seconds_count") == 3
    assert _value(after, "inferwatch_queue_rows") == 0
    assert ("inferwatch_commit_seconds_bucket", (("le", "+Inf"),)) in after
    assert ("inferwatch_ingest_rejected_total", ()) in after


def test_metrics_label_routes_not_raw_paths(web: httpx.Client, ws: Workspace) -> None:
    ws.client.get(f"{ws.api}/inferences/some-unique-id-qzx")
    web.get("/no/such/route/qzx")
    text = web.get("/metrics").text
    # Letters, not digits: a digit string can turn up inside a sample's float value.
    assert "qzx" not in text
    assert 'route="unmatched"' in text


def test_unknown_route_is_a_json_404(web: httpx.Client) -> None:
    reply = web.get("/api/v1/nothing/here/at/all")
    assert reply.status_code == 404
    assert reply.json()["error"]
    reply = web.delete("/healthz")
    assert reply.status_code == 405
    assert reply.json()["error"]


def test_openapi_documents_every_route(web: httpx.Client) -> None:
    reply = web.get("/openapi.json")
    assert reply.status_code == 200
    spec = reply.json()
    paths = spec["paths"]
    expected = {
        ("/", "get"),
        ("/{workspace}/inference-stats/metadata", "post"),
        ("/api/v1/{workspace}/inferences", "post"),
        ("/api/v1/{workspace}/inferences", "get"),
        ("/api/v1/{workspace}/inferences/{inference_id}", "get"),
        ("/api/v1/{workspace}/stats", "get"),
        ("/api/v1/{workspace}/metadata/fields", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
    }
    documented = {(path, method) for path, ops in paths.items() for method in ops}
    assert expected <= documented, expected - documented
    assert not any(path.startswith("/admin") for path in paths)
    for path, method in expected:
        assert paths[path][method].get("summary"), (path, method)
    ingest_body = paths["/api/v1/{workspace}/inferences"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(ingest_body)
    meta_ref = paths["/{workspace}/inference-stats/metadata"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "data" in spec["components"]["schemas"][meta_ref]["properties"]
