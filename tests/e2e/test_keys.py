"""Named keys with scopes (ingest, read, manage), viewers, and the audit trail, on the app in this
process (either store, with --store): who may call what is one table, and each route keeps it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from inferwatch.api.common import Runtime
from inferwatch.auth import Access, RouteAccess, Scope, access_table
from tests.conftest import Workspace, item
from tests.server import InProcess

SCOPES = ("ingest", "read", "manage")
# The API reference's own pages: no data of any workspace behind them.
FRAMEWORK_ROUTES = {"/docs", "/docs/oauth2-redirect"}


def new_key(ws: Workspace, name: str, scopes: list[str], **extra: Any) -> tuple[str, dict[str, Any]]:
    reply = ws.client.post(f"{ws.api}/keys", json={"name": name, "scopes": scopes, **extra})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return body.pop("api_key"), body


def as_key(app_server: InProcess, key: str) -> httpx.Client:
    return app_server.client(headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def scoped(app_server: InProcess, ws: Workspace) -> Iterator[dict[str, httpx.Client]]:
    """A client per scope, each with a key holding only that scope."""
    clients = {scope: as_key(app_server, new_key(ws, f"only-{scope}", [scope])[0]) for scope in SCOPES}
    yield clients
    for client in clients.values():
        client.close()


def _routes(app_server: InProcess) -> list[RouteAccess]:
    return [r for r in access_table(app_server.app.routes) if r.path not in FRAMEWORK_ROUTES]


def _path(path: str, ws: Workspace) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: ws.slug if m.group(0) == "{workspace}" else "x", path)


def test_every_route_declares_who_may_call_it(app_server: InProcess) -> None:
    routes = _routes(app_server)
    assert len(routes) > 60
    undeclared = [f"{sorted(r.methods)} {r.path}: {r.declared}" for r in routes if len(r.declared) != 1]
    assert undeclared == []
    # Besides the API routes only static files are served, and the API reference's schema.
    others = [r for r in app_server.app.routes if not hasattr(r, "effective_route_contexts")
              and not isinstance(r, APIRoute)]
    assert sorted(getattr(r, "path", "") for r in others) == ["/openapi.json", "/static", "/static-offline-docs"]
    assert all(isinstance(r, Mount) for r in others if getattr(r, "path", "").startswith("/static"))


def test_each_route_against_a_key_of_each_scope(app_server: InProcess, ws: Workspace,
                                                scoped: dict[str, httpx.Client]) -> None:
    """A key holding the route's scope passes auth (any answer but 401/403); one without it gets
    403 with {"error", "detail"}. Admin routes refuse every workspace key; public ones take all."""
    checked = 0
    for route in _routes(app_server):
        (access,) = route.declared
        if access.kind in ("page", "form"):
            continue  # sessions, not keys: the viewer tests below
        method = sorted(route.methods)[0]
        path = _path(route.path, ws)
        for scope, client in scoped.items():
            # A report's shape, so the report route reaches its key check; others check first.
            reply = client.request(method, path, json={"inference_results": []},
                                   params={"model_id": "m"} if "ground-truth" in path else None)
            where = f"{method} {route.path} with a {scope} key: {reply.status_code} {reply.text[:200]}"
            if access.kind == "admin":
                assert reply.status_code == 401 and reply.json()["error"], where
            elif access.kind == "public" or access.scope is None or access.scope == scope:
                assert reply.status_code not in (401, 403), where
            else:
                assert reply.status_code == 403, where
                body = reply.json()
                assert body["error"] == "Forbidden" and f"`{access.scope}`" in body["detail"], where
            checked += 1
    assert checked > 150


def test_an_ingest_key_cannot_read_what_it_sent(app_server: InProcess, ws: Workspace) -> None:
    key, _ = new_key(ws, "camera-7", ["ingest"])
    with as_key(app_server, key) as device:
        reply = device.post(f"{ws.api}/inferences", json={"inferences": [item("sent-1")]})
        assert reply.status_code == 200 and reply.json()["accepted"] == 1
        for path in ("/inferences/sent-1", "/inferences", "/stats", "/export.csv", "/keys", "/audit"):
            refused = device.get(f"{ws.api}{path}")
            assert refused.status_code == 403, path
            assert set(refused.json()) == {"error", "detail"}
        # Roboflow clients resolve their workspace with the key they hold.
        assert device.get("/").json() == {"workspace": ws.slug}
    assert ws.client.get(f"{ws.api}/inferences/sent-1").status_code == 200


def test_a_revoked_key_is_refused_on_the_next_request(app_server: InProcess, ws: Workspace) -> None:
    key, record = new_key(ws, "line-2", ["ingest", "read"])
    with as_key(app_server, key) as client:
        assert client.get(f"{ws.api}/inferences").status_code == 200
        revoked = ws.client.delete(f"{ws.api}/keys/{record['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        reply = client.get(f"{ws.api}/inferences")
        assert reply.status_code == 401 and "revoked" in reply.json()["detail"]
        assert client.post(f"{ws.api}/inferences", json={"inferences": [item("late")]}).status_code == 401
    assert ws.client.get(f"{ws.api}/inferences/late").status_code == 404


def test_an_expired_key_is_refused_on_the_next_request(app_server: InProcess, ws: Workspace) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    key, record = new_key(ws, "contractor", ["read"], expires_at=later)
    assert record["expires_at"] is not None
    with as_key(app_server, key) as client:
        assert client.get(f"{ws.api}/inferences").status_code == 200
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        changed = ws.client.patch(f"{ws.api}/keys/contractor", json={"expires_at": past})
        assert changed.status_code == 200, changed.text
        reply = client.get(f"{ws.api}/inferences")
        assert reply.status_code == 401 and "expired" in reply.json()["detail"]


def test_keys_are_listed_without_their_secret_and_shown_once(ws: Workspace) -> None:
    key, record = new_key(ws, "grafana", ["read"])
    listed = ws.client.get(f"{ws.api}/keys").json()["keys"]
    assert [k["name"] for k in listed] == ["default", "grafana"]
    assert listed[0]["scopes"] == list(SCOPES)
    assert listed[1] == {**record, "last_used_at": None}
    assert key not in str(listed) and "hash" not in str(listed)
    assert set(listed[1]) == {"id", "name", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at"}


def test_last_use_is_noted_without_a_write_per_request(app_server: InProcess, ws: Workspace) -> None:
    key, _ = new_key(ws, "edge-1", ["ingest"])
    with as_key(app_server, key) as device:
        assert device.post(f"{ws.api}/inferences", json={"inferences": [item("u1")]}).status_code == 200
    keys = {k["name"]: k for k in ws.client.get(f"{ws.api}/keys").json()["keys"]}
    assert keys["edge-1"]["last_used_at"] is not None  # from memory, before any flush
    rt = _runtime(app_server)
    stored = {k.name: k for k in rt.store.api_keys(_ws_id(app_server, ws))}
    assert stored["edge-1"].last_used_at is None  # not written on the request's path
    _flush(app_server)
    stored = {k.name: k for k in rt.store.api_keys(_ws_id(app_server, ws))}
    assert stored["edge-1"].last_used_at is not None


def _runtime(app_server: InProcess) -> Runtime:
    rt: Runtime = app_server.app.state.runtime
    return rt


def _flush(app_server: InProcess) -> None:
    """What the server does once a minute: last uses written, expiries noted."""
    rt = _runtime(app_server)
    rt.writer.call(rt.keys.flush)


def _ws_id(app_server: InProcess, ws: Workspace) -> int:
    found = _runtime(app_server).keys.by_slug(ws.slug)
    assert found is not None
    return found.id


def test_bad_key_requests_change_nothing(ws: Workspace) -> None:
    for body in ({"name": "x", "scopes": ["admin"]}, {"name": "x", "scopes": []}, {"name": "", "scopes": ["read"]},
                 {"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"},
                 {"name": "default", "scopes": ["read"]}, {"name": "x", "scopes": ["read"], "color": "red"}):
        reply = ws.client.post(f"{ws.api}/keys", json=body)
        assert reply.status_code == 400, (body, reply.text)
        assert set(reply.json()) == {"error", "detail"}
    assert [k["name"] for k in ws.client.get(f"{ws.api}/keys").json()["keys"]] == ["default"]
    assert ws.client.delete(f"{ws.api}/keys/nope").status_code == 404


# -- the audit trail -------------------------------------------------------------------------------

def test_the_audit_records_each_action_once_with_the_key_name(app_server: InProcess, ws: Workspace) -> None:
    key, _ = new_key(ws, "ops-team", ["read", "manage"])
    with as_key(app_server, key) as ops:
        rule = {"name": "low", "metric": "avg_confidence", "condition": "below", "warning": 0.5}
        created = ops.post(f"{ws.api}/alerts", json=rule)
        assert created.status_code == 201, created.text
        rule_id = created.json()["id"]
        assert ops.put(f"{ws.api}/alerts/{rule_id}", json={**rule, "warning": 0.4}).status_code == 200
        assert ops.delete(f"{ws.api}/alerts/{rule_id}").status_code == 200
        assert ops.put(f"{ws.api}/retention", json={"max_days": 30}).status_code == 200
        assert ops.put(f"{ws.api}/ground-truth", params={"model_id": "pcb/1"},
                       json={"label_field": "expected"}).status_code == 200
        _, device = new_key(ws, "placeholder", ["ingest"])  # by the workspace's default key
        made = ops.post(f"{ws.api}/keys", json={"name": "camera-9", "scopes": ["ingest"]})
        assert made.status_code == 201
        assert ops.delete(f"{ws.api}/keys/camera-9").status_code == 200
        assert ops.delete(f"{ws.api}/keys/camera-9").status_code == 404  # by name: only keys in use
        assert ops.delete(f"{ws.api}/keys/{made.json()['id']}").status_code == 200  # again: no new event
        # Reads and ingest are not audited.
        assert ops.get(f"{ws.api}/alerts").status_code == 200
        events = ops.get(f"{ws.api}/audit").json()["events"]
    done = [(e["actor"], e["action"], e["target"]) for e in reversed(events)]
    assert done == [
        ("cli", "workspace.created", ws.slug),
        ("default", "key.created", "ops-team"),
        ("ops-team", "alert_rule.created", rule_id),
        ("ops-team", "alert_rule.replaced", rule_id),
        ("ops-team", "alert_rule.deleted", rule_id),
        ("ops-team", "retention.set", ws.slug),
        ("ops-team", "ground_truth.set", "pcb/1"),
        ("default", "key.created", "placeholder"),
        ("ops-team", "key.created", "camera-9"),
        ("ops-team", "key.revoked", "camera-9"),
    ]
    assert events[4]["detail"] == {"max_days": 30, "max_inferences": None, "image_max_days": None}
    assert device["name"] == "placeholder"


def test_an_expiry_is_recorded_once(app_server: InProcess, ws: Workspace) -> None:
    _, record = new_key(ws, "temp", ["read"])
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert ws.client.patch(f"{ws.api}/keys/{record['id']}", json={"expires_at": past}).status_code == 200
    _flush(app_server)
    _flush(app_server)
    actions = [e["action"] for e in ws.client.get(f"{ws.api}/audit").json()["events"] if e["target"] == "temp"]
    assert actions == ["key.expired", "key.expiry_set", "key.created"]


# -- viewers: the dashboard signed in with a read key ----------------------------------------------

@contextmanager
def _sign_in(app_server: InProcess, key: str) -> Iterator[httpx.Client]:
    with app_server.client(follow_redirects=False) as browser:
        page = browser.get("/signin")
        reply = browser.post("/signin", data={"api_key": key, "csrf": _csrf(page), "next": "/alerts"})
        assert reply.status_code == 303, reply.text
        yield browser


def _csrf(page: httpx.Response) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


def test_a_viewer_sees_no_form_and_its_form_posts_are_refused(app_server: InProcess, ws: Workspace) -> None:
    rule = {"name": "keep", "metric": "avg_confidence", "condition": "below", "warning": 0.5}
    rule_id = ws.client.post(f"{ws.api}/alerts", json=rule).json()["id"]
    key, _ = new_key(ws, "wall-screen", ["read"])
    with _sign_in(app_server, key) as viewer:
        page = viewer.get("/alerts")
        assert page.status_code == 200
        assert 'action="/alerts/new"' not in page.text and "data-csrf" not in page.text
        assert "(viewer)" in page.text and 'href="/audit"' not in page.text
        token = _csrf(page)  # the sign-out form's: a viewer may still sign out
        form = {"csrf": token, "name": "sneaky", "metric": "avg_confidence", "condition": "below", "warning": "1"}
        for path, data in (("/alerts/new", form), (f"/alerts/{rule_id}/delete", {"csrf": token})):
            reply = viewer.post(path, data=data)
            assert reply.status_code == 403, (path, reply.text)
            assert reply.json()["error"] == "Forbidden" and "`manage`" in reply.json()["detail"]
        # The session reads the API like the key, and never writes through it.
        assert viewer.get(f"{ws.api}/alerts").status_code == 200
        assert viewer.get(f"{ws.api}/audit").status_code == 403
        assert viewer.post(f"{ws.api}/alerts", json=rule).status_code == 401
    assert [a["rule"]["name"] for a in ws.client.get(f"{ws.api}/alerts").json()["alerts"]] == ["keep"]


def test_a_manager_session_has_the_forms_and_an_ingest_key_cannot_sign_in(app_server: InProcess,
                                                                            ws: Workspace) -> None:
    key, _ = new_key(ws, "lead", ["read", "manage"])
    with _sign_in(app_server, key) as manager:
        page = manager.get("/alerts")
        assert 'action="/alerts/new"' in page.text and "data-csrf" in page.text
        form = {"csrf": _csrf(page), "name": "from-form", "metric": "avg_confidence", "condition": "below",
                "warning": "0.5"}
        assert manager.post("/alerts/new", data=form).status_code == 303
        assert manager.get("/audit").status_code == 200
        assert manager.get(f"{ws.api}/audit").status_code == 200
    trail = ws.client.get(f"{ws.api}/audit").json()["events"]
    assert [(e["actor"], e["action"]) for e in trail[:2]] == [("lead", "alert_rule.created"), ("lead", "signin")]
    device_key, _ = new_key(ws, "device", ["ingest"])
    with app_server.client(follow_redirects=False) as anon:
        token = _csrf(anon.get("/signin"))
        reply = anon.post("/signin", data={"api_key": device_key, "csrf": token})
        assert reply.status_code == 200 and "lacks the `read` scope" in reply.text
        assert "iw_session" not in reply.cookies


def test_a_revoked_keys_session_ends(app_server: InProcess, ws: Workspace) -> None:
    key, record = new_key(ws, "kiosk", ["read"])
    with _sign_in(app_server, key) as viewer:
        assert viewer.get("/overview").status_code == 200
        assert ws.client.delete(f"{ws.api}/keys/{record['id']}").status_code == 200
        assert viewer.get("/overview").status_code == 303
        assert viewer.get(f"{ws.api}/inferences").status_code == 401


# -- the Roboflow report route ---------------------------------------------------------------------

def test_a_body_that_is_no_report_is_a_400(app_server: InProcess, ws: Workspace) -> None:
    for body in ({}, {"api_key": ws.key}, {"api_key": ws.key, "inference_results": None}, {"hello": "world"}):
        reply = ws.client.post("/inference-stats", json=body)
        assert reply.status_code == 400, (body, reply.text)
        assert "inference_results" in reply.json()["detail"]
    assert ws.client.post("/inference-stats", json={"inference_results": []}).json()["accepted"] == 0


def test_access_names_print_for_the_docs() -> None:
    assert str(Access("key", Scope.READ)) == "key:read" and str(Access("public")) == "public"


def test_the_security_doc_lists_every_route(app_server: InProcess) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    missing = [f"{','.join(sorted(r.methods))} {r.path}" for r in _routes(app_server)
               if f"| `{','.join(sorted(r.methods))}` | `{r.path}` |" not in doc]
    assert missing == []
