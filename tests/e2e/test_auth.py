"""Every API route needs its workspace's key (Bearer, ?api_key=, or the Roboflow body key);
a missing or wrong key is 401, another workspace's key 403, and nothing is written either way."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Workspace, attach, field_names, ingest, item, list_all, stats, total
from tests.server import InProcess, Server

READ_ROUTES = ["/inferences", "/inferences/some-id", "/stats", "/metadata/fields"]


def _metadata_body(key: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"data": [{"inference_ids": ["i1"], "field_name": "f", "field_value": "v"}]}
    if key is not None:
        body["api_key"] = key
    return body


@pytest.mark.parametrize("route", READ_ROUTES)
def test_read_routes_need_a_key(web: httpx.Client, ws: Workspace, route: str) -> None:
    reply = web.get(f"{ws.api}{route}")
    assert reply.status_code == 401
    assert "error" in reply.json()
    reply = web.get(f"{ws.api}{route}", headers={"Authorization": "Bearer not-a-real-key"})
    assert reply.status_code == 401
    assert "error" in reply.json()


@pytest.mark.parametrize("route", READ_ROUTES)
def test_read_routes_refuse_another_workspaces_key(ws: Workspace, other: Workspace, route: str) -> None:
    reply = other.client.get(f"{ws.api}{route}")
    assert reply.status_code == 403
    assert "error" in reply.json()


def test_key_in_query_string_works_everywhere(web: httpx.Client, ws: Workspace) -> None:
    ingest(ws, [item("q1")])
    for route in ["/inferences", "/inferences/q1", "/stats", "/metadata/fields"]:
        reply = web.get(f"{ws.api}{route}", params={"api_key": ws.key})
        assert reply.status_code == 200, (route, reply.text)
    reply = web.post(f"{ws.api}/inferences", params={"api_key": ws.key},
                     json={"inferences": [item("q2")]})
    assert reply.status_code == 200
    assert total(ws) == 2


def test_ingest_refuses_missing_wrong_and_foreign_keys_and_writes_nothing(
        web: httpx.Client, ws: Workspace, other: Workspace) -> None:
    body = {"inferences": [item("x1")]}
    url = f"{ws.api}/inferences"
    assert web.post(url, json=body).status_code == 401
    assert web.post(url, json=body, headers={"Authorization": "Bearer wrong-key-123"}).status_code == 401
    assert web.post(url, json=body, params={"api_key": "wrong-key-123"}).status_code == 401
    # The body key is a Roboflow-route convention only; native ingest does not read it.
    assert web.post(url, json={**body, "api_key": ws.key}).status_code == 401
    reply = other.client.post(url, json=body)
    assert reply.status_code == 403
    assert reply.json()["error"]
    assert total(ws) == 0
    assert total(other) == 0


def test_metadata_accepts_body_query_and_bearer_keys(web: httpx.Client, ws: Workspace) -> None:
    url = f"/{ws.slug}/inference-stats/metadata"
    body = {"api_key": ws.key, "data": [{"inference_ids": ["a"], "field_name": "by_body", "field_value": "1"}]}
    reply = web.post(url, json=body)
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    body = {"data": [{"inference_ids": ["a"], "field_name": "by_query", "field_value": "1"}]}
    reply = web.post(url, json=body, params={"api_key": ws.key, "nocache": "true"},
                     headers={"X-Allow-Chunked": "true", "X-Roboflow-Inference-Version": "1.8.3"})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    attach(ws, [{"inference_ids": ["a"], "field_name": "by_bearer", "field_value": "1"}])
    assert field_names(ws) == ["by_bearer", "by_body", "by_query"]


def test_metadata_refuses_bad_keys_and_writes_nothing(web: httpx.Client, ws: Workspace, other: Workspace) -> None:
    url = f"/{ws.slug}/inference-stats/metadata"
    assert web.post(url, json=_metadata_body()).status_code == 401
    assert web.post(url, json=_metadata_body("wrong-key-123")).status_code == 401
    reply = web.post(url, json=_metadata_body(), params={"api_key": "wrong-key-123"})
    assert reply.status_code == 401
    assert reply.json()["error"]
    # Auth is answered before validation: a malformed body without a key is still a 401.
    assert web.post(url, content=b"not json").status_code == 401
    assert web.post(url, json={"api_key": "wrong-key-123", "data": "nope"}).status_code == 401
    reply = web.post(url, json=_metadata_body(other.key))
    assert reply.status_code == 403
    assert reply.json()["error"]
    assert other.client.post(url, json=_metadata_body()).status_code == 403
    assert field_names(ws) == []
    assert field_names(other) == []


def test_workspace_lookup(web: httpx.Client, ws: Workspace, other: Workspace) -> None:
    reply = web.get("/", params={"api_key": ws.key, "nocache": "true"})
    assert reply.status_code == 200
    assert reply.json() == {"workspace": ws.slug}
    assert other.client.get("/").json() == {"workspace": other.slug}
    reply = web.get("/", params={"api_key": "wrong-key-123"})
    assert reply.status_code == 401
    assert reply.json()["error"]


def test_root_without_a_key_is_a_page_not_data(web: httpx.Client) -> None:
    reply = web.get("/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert "/docs" in reply.text


def test_same_inference_id_in_two_workspaces_stays_apart(ws: Workspace, other: Workspace) -> None:
    ingest(ws, [item("shared", "model-a")])
    ingest(other, [item("shared", "model-b")])
    attach(ws, [{"inference_ids": ["shared"], "field_name": "owner", "field_value": "ws"}])
    mine = ws.client.get(f"{ws.api}/inferences/shared").json()
    theirs = other.client.get(f"{other.api}/inferences/shared").json()
    assert (mine["model_id"], mine["metadata"]) == ("model-a", {"owner": "ws"})
    assert (theirs["model_id"], theirs["metadata"]) == ("model-b", {})
    assert field_names(other) == []
    assert total(ws) == 1 and total(other) == 1


def test_admin_routes_are_not_open_to_workspace_keys(app_server: InProcess, web: httpx.Client, ws: Workspace) -> None:
    reply = web.post("/admin/workspaces", json={"slug": "sneaky"},
                     headers={"Authorization": f"Bearer {ws.key}"})
    assert reply.status_code == 401
    listing = app_server.admin("GET", "/workspaces").json()["workspaces"]
    assert "sneaky" not in [w["slug"] for w in listing]


def test_metadata_of_another_workspace_never_leaks_into_filters_or_groups(ws: Workspace, other: Workspace) -> None:
    ingest(ws, [item("shared", timestamp=1767225600)])
    ingest(other, [item("shared", timestamp=1767225600)])
    attach(other, [{"inference_ids": ["shared"], "field_name": "site", "field_value": "theirs"}])
    attach(ws, [{"inference_ids": ["shared"], "field_name": "line", "field_value": "mine"}])
    assert list_all(ws, **{"meta.site": "theirs"}) == []
    assert [r["metadata"] for r in list_all(ws)] == [{"line": "mine"}]
    body = stats(ws, group_by="meta.site")
    assert [p["group"] for p in body["series"]] == [None]
    assert stats(ws, **{"meta.site": "theirs"})["totals"]["inferences"] == 0
    assert field_names(ws) == ["line"]
    assert field_names(other) == ["site"]


def test_rotated_key_stops_working_and_the_new_one_sees_the_same_data(app_server: InProcess, web: httpx.Client) -> None:
    slug, old = app_server.new_workspace("rot")
    with app_server.client(headers={"Authorization": f"Bearer {old}"}) as client:
        assert client.post(f"/api/v1/{slug}/inferences", json={"inferences": [item("kept")]}).status_code == 200
    reply = app_server.admin("POST", f"/workspaces/{slug}/rotate-key")
    assert reply.status_code == 200
    new = reply.json()["api_key"]
    assert new != old
    assert web.get("/", params={"api_key": old}).status_code == 401
    assert web.get(f"/api/v1/{slug}/inferences/kept", params={"api_key": old}).status_code == 401
    assert web.get("/", params={"api_key": new}).json() == {"workspace": slug}
    assert web.get(f"/api/v1/{slug}/inferences/kept", params={"api_key": new}).status_code == 200


def test_a_workspace_can_bring_its_own_roboflow_key(app_server: InProcess, web: httpx.Client) -> None:
    slug = f"rf-{uuid.uuid4().hex[:8]}"
    key = f"rf_{uuid.uuid4().hex}"
    reply = app_server.admin("POST", "/workspaces", {"slug": slug, "api_key": key})
    assert reply.status_code == 200
    assert reply.json()["api_key"] == key
    assert web.get("/", params={"api_key": key, "nocache": "true"}).json() == {"workspace": slug}
    # Neither the name nor the key can be taken twice.
    again = app_server.admin("POST", "/workspaces", {"slug": slug})
    assert again.status_code == 400
    taken = app_server.admin("POST", "/workspaces", {"slug": f"{slug}-2", "api_key": key})
    assert taken.status_code == 400
    slugs = [w["slug"] for w in app_server.admin("GET", "/workspaces").json()["workspaces"]]
    assert slugs.count(slug) == 1 and f"{slug}-2" not in slugs


@pytest.mark.parametrize("body", [{"slug": "-starts-with-dash"}, {"slug": "has space"}, {"slug": ""},
                                  {"slug": "x" * 65}, {"slug": "ok-name", "api_key": "short"},
                                  {"slug": "ok-name", "api_key": "has space in it"}, {"name": "x"}])
def test_bad_workspace_specs_are_400(app_server: InProcess, body: dict[str, object]) -> None:
    reply = app_server.admin("POST", "/workspaces", body)
    assert reply.status_code == 400
    assert reply.json()["error"] == "Invalid request"
    slugs = [w["slug"] for w in app_server.admin("GET", "/workspaces").json()["workspaces"]]
    assert body.get("slug") not in slugs


def test_rotating_an_unknown_workspace_is_400(app_server: InProcess) -> None:
    assert app_server.admin("POST", "/workspaces/no-such-workspace/rotate-key").status_code == 400


def test_a_bad_key_is_401_before_the_body_is_read(server: Server, ws: Workspace) -> None:
    big = b'{"data": [], "pad": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    for url in (f"{server.url}/{ws.slug}/inference-stats/metadata", f"{server.url}{ws.api}/inferences"):
        reply = httpx.post(url, content=big, params={"api_key": "wrong-key-123"},
                           headers={"Content-Type": "application/json"})
        assert reply.status_code == 401, (url, reply.text)
        reply = httpx.post(url, content=big, headers={"Authorization": "Bearer wrong-key-123",
                                                      "Content-Type": "application/json"})
        assert reply.status_code == 401, (url, reply.text)
    # With the key in the body the body must be read first: too big is 413 whoever sends it.
    reply = httpx.post(f"{server.url}/{ws.slug}/inference-stats/metadata", content=big,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 413


def test_a_workspace_that_does_not_exist_is_403_not_404(ws: Workspace) -> None:
    """A valid key learns nothing about other names: unknown and foreign workspaces look alike."""
    for reply in (ws.client.get("/api/v1/no-such-ws/inferences"),
                  ws.client.post("/api/v1/no-such-ws/inferences", json={"inferences": [item("z")]}),
                  ws.client.post("/no-such-ws/inference-stats/metadata", json=_metadata_body())):
        assert reply.status_code == 403
    assert total(ws) == 0
    assert field_names(ws) == []
