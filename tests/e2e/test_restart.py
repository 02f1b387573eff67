"""Data outlives the process: a new server on the same data dir serves everything acknowledged."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Workspace, attach, ingest, item, list_all, stats
from tests.server import Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own


def _client(srv: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _fill(ws: Workspace) -> None:
    ingest(ws, [item(f"r{n:03d}", "m/1", timestamp=1767225600 + n, device_id=f"d{n % 3}",
                     predictions=[{"class": "a", "confidence": 0.5, "x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0}])
                for n in range(120)])
    attach(ws, [{"inference_ids": ["r000", "r001"], "field_name": "site", "field_value": "s1"},
                {"inference_ids": ["later"], "field_name": "site", "field_value": "s2"}])


def _check(ws: Workspace) -> None:
    rows = list_all(ws)
    assert len(rows) == 120
    assert rows[0]["inference_id"] == "r119"
    assert rows[-1]["metadata"] == {"site": "s1"}
    assert rows[-1]["predictions"][0]["width"] == 3.0
    assert stats(ws)["totals"]["predictions"] == 120
    assert {f["name"]: f["distinct_values"] for f in ws.client.get(f"{ws.api}/metadata/fields").json()["fields"]} \
        == {"site": 2}


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_data_survives_a_restart(own_server: Server, how: str) -> None:
    slug, key = own_server.new_workspace()
    with _client(own_server, key) as client:
        ws = Workspace(slug, key, client)
        _fill(ws)
        _check(ws)
    if how == "sigterm":
        own_server.stop()
    else:
        own_server.kill()  # every acknowledged write was committed before its 200
    restarted = Server(own_server.data_dir).start()
    try:
        with _client(restarted, key) as client:
            ws = Workspace(slug, key, client)
            assert client.get("/").json() == {"workspace": slug}
            _check(ws)
            # Early metadata kept across the restart still joins an inference arriving now.
            ingest(ws, [item("later", timestamp=1767225600)])
            assert client.get(f"{ws.api}/inferences/later").json()["metadata"] == {"site": "s2"}
            # Identity holds across the restart too.
            ingest(ws, [item("r000", timestamp=1767225600)])
            assert stats(ws)["totals"]["inferences"] == 121
    finally:
        restarted.stop()


def test_first_workspace_and_its_key_survive_a_restart(own_server: Server) -> None:
    key = own_server.initial_key
    with _client(own_server, key) as client:
        slug = client.get("/").json()["workspace"]
        ingest(Workspace(slug, key, client), [item("first")])
    own_server.stop()
    restarted = Server(own_server.data_dir).start()
    try:
        assert restarted.initial_key == key
        with _client(restarted, key) as client:
            assert client.get("/").json() == {"workspace": slug}
            assert client.get(f"/api/v1/{slug}/inferences/first").status_code == 200
            listing = restarted.admin("GET", "/workspaces").json()["workspaces"]
            assert [w["slug"] for w in listing] == [slug]
    finally:
        restarted.stop()
