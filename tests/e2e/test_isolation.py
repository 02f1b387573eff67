"""Every workspace route in the server's own OpenAPI schema, read and write, refuses a missing,
wrong or foreign key (promise 4). Taken from `/openapi.json` at run time, so routes added later
(export, dashboard figures, devices, images...) are covered without touching this test."""

from __future__ import annotations

import hashlib
import re
import uuid

import duckdb
import httpx

import tests.server
from tests.conftest import EVER, Workspace, field_names, ingest, item
from tests.server import TLS, Server

_PARAMS = {"inference_id": "kept", "image_id": "0" * 64, "project": "p"}


def _workspace_operations(server: Server) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json", verify=TLS).json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops
            if "{workspace}" in path]


def _url(path: str, slug: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: slug if m.group(1) == "workspace" else _PARAMS.get(m.group(1), "x"), path)


def test_every_workspace_route_refuses_missing_wrong_and_foreign_keys(
        server: Server, ws: Workspace, other: Workspace) -> None:
    ingest(ws, [item("kept", metadata={"site": "a"})])
    operations = _workspace_operations(server)
    assert len(operations) >= 15, operations  # 16 when this test was written
    for method, path in operations:
        url = f"{server.url}{_url(path, ws.slug)}"
        body = {"inferences": [item("intruder")], "data": [
            {"inference_ids": ["kept"], "field_name": "site", "field_value": "b"}]}
        for headers, expected in (({}, 401), ({"Authorization": "Bearer not-a-real-key-1"}, 401),
                                  ({"Authorization": f"Bearer {other.key}"}, 403)):
            reply = httpx.request(method, url, headers=headers, verify=TLS, params=EVER if method == "GET" else None,
                                  json=body if method != "GET" else None)
            assert reply.status_code == expected, (method, path, headers, reply.status_code, reply.text[:200])
            assert reply.headers["content-type"].startswith("application/json"), (method, path)
            assert "kept" not in reply.text, (method, path)  # nothing of the workspace leaks in the error
    rows = ws.client.get(f"{ws.api}/inferences").json()["inferences"]
    assert [(r["inference_id"], r["metadata"]) for r in rows] == [("kept", {"site": "a"})]
    assert field_names(other) == []
    assert other.client.get(f"{other.api}/inferences").json()["inferences"] == []


def test_keys_are_stored_only_as_hashes(own_server: Server) -> None:
    """A stolen database file (or backup) holds no key that signs in: only SHA-256 hashes."""
    key = f"distinctive-key-{uuid.uuid4().hex}"
    assert own_server.admin("POST", "/workspaces", {"slug": "hashed", "api_key": key}).status_code == 200
    assert httpx.get(f"{own_server.url}/", params={"api_key": key}, verify=TLS).json() == {"workspace": "hashed"}
    own_server.stop()
    if tests.server.STORE == "chdb":  # the ClickHouse engine's data folder, every file of it
        files = [p for p in (own_server.data_dir / "chdb").rglob("*") if p.is_file()]
        assert files
        assert key.encode() not in b"".join(p.read_bytes() for p in files)
        return
    stored = b"".join(p.read_bytes() for p in own_server.data_dir.glob("inferwatch.duckdb*"))
    assert key.encode() not in stored
    con = duckdb.connect(str(own_server.data_dir / "inferwatch.duckdb"), read_only=True)
    try:
        (hashed,) = con.execute("SELECT key_hash FROM workspaces WHERE slug = 'hashed'").fetchone() or (None,)
    finally:
        con.close()
    assert hashed == hashlib.sha256(key.encode()).hexdigest()
