"""Which inference-server requests the proxy records, and what it reads from them (pure functions;
the end-to-end proof with Roboflow's own client is tests/e2e/test_proxy.py)."""

from __future__ import annotations

import json

import pytest

from inferwatch.proxy.recognize import Route, answer_results, lean, request_facts, route_of


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("POST", "/infer/object_detection", Route("infer")),
    ("POST", "/infer/classification", Route("infer")),
    ("POST", "/infer/keypoints_detection/", Route("infer")),
    ("POST", "/pcb-defects/7", Route("legacy", "pcb-defects/7")),
    ("POST", "/workflows/run", Route("workflow", "workflow")),
    ("POST", "/infer/workflows", Route("workflow", "workflow")),
    ("POST", "/acme/workflows/pcb-check", Route("workflow", "workflow:acme/pcb-check")),
    ("POST", "/infer/workflows/acme/pcb-check", Route("workflow", "workflow:acme/pcb-check")),
    ("GET", "/pcb-defects/7", None),
    ("POST", "/model/add", None),
    ("POST", "/clip/embed_image", None),
    ("POST", "/infer/embeddings", None),
    ("POST", "/infer/lmm", None),
    ("POST", "/acme/workflows/pcb-check/describe_interface", None),
    ("GET", "/model/registry", None),
])
def test_routes(method: str, path: str, expected: Route | None) -> None:
    assert route_of(method, path) == expected


def test_request_facts_from_body_query_and_bearer() -> None:
    body = json.dumps({"model_id": "parts/3", "api_key": "in-body", "source": "app",
                       "image": {"type": "base64", "value": "x" * 1000}}).encode()
    facts = request_facts(Route("infer"), b"api_key=in-query", body, "Bearer in-header")
    assert (facts.model_id, facts.api_key, facts.source) == ("parts/3", "in-body", "app")
    facts = request_facts(Route("infer"), b"", json.dumps({"model_id": "parts/3"}).encode(), "Bearer in-header")
    assert facts.api_key == "in-header"
    legacy = request_facts(Route("legacy", "parts/3"), b"api_key=k&source=cam&confidence=0.4", b"/9j/4AAQ", None)
    assert (legacy.model_id, legacy.api_key, legacy.source) == ("parts/3", "k", "cam")
    broken = request_facts(Route("infer"), b"", b"{not json", None)
    assert broken.model_id is None


def test_a_batch_without_ids_gets_one_shared_id() -> None:
    answer = [{"predictions": [], "time": 0.1}, {"predictions": [], "time": 0.2}]
    found, changed = answer_results(Route("infer"), answer)
    assert changed
    assert answer[0]["inference_id"] == answer[1]["inference_id"]
    assert len(found) == 1 and found[0].results == answer


def test_answers_with_ids_are_left_alone_and_non_results_ignored() -> None:
    answer = {"inference_id": "a", "predictions": [{"class": "x", "confidence": 0.5}], "visualization": "..."}
    found, changed = answer_results(Route("legacy", "p/1"), answer)
    assert not changed and found[0].model_id == "p/1"
    assert lean(found[0].results[0]) == {"inference_id": "a", "predictions": [{"class": "x", "confidence": 0.5}]}
    assert answer_results(Route("infer"), {"embeddings": [[0.1]]}) == ([], False)
    assert answer_results(Route("infer"), [1, 2]) == ([], False)


def test_workflow_outputs_carrying_ids_are_found_nested_or_flat() -> None:
    answer = {"outputs": [
        {"model": {"inference_id": "w1", "model_id": "parts/3",
                   "predictions": {"image": {"width": 4, "height": 3}, "predictions": [{"class": "a"}]}},
         "count": 1},
        {"predictions": {"image": {"width": 4, "height": 3}, "predictions": []}, "inference_id": "w2"},
        {"crops": [{"model": {"inference_id": "w3", "predictions": {"predictions": [], "top": "b"}}}]},
        {"no_id": {"predictions": []}},
    ]}
    found, changed = answer_results(Route("workflow", "workflow:acme/x"), answer)
    assert not changed
    by_id = {f.results[0]["inference_id"]: f for f in found}
    assert set(by_id) == {"w1", "w2", "w3"}
    assert by_id["w1"].model_id == "parts/3"
    assert by_id["w1"].results[0]["image"] == {"width": 4, "height": 3}
    assert by_id["w2"].model_id == "workflow:acme/x"
    assert by_id["w3"].results[0]["top"] == "b"
