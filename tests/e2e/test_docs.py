"""The API reference works without the internet: every asset it loads is served locally."""

from __future__ import annotations

import re

import httpx

from tests.server import Server


def test_api_reference_loads_only_local_assets(server: Server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is fetched from elsewhere"
        assert httpx.get(f"{server.url}{asset}").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/{workspace}/inferences" in spec["paths"]
    body = spec["paths"]["/api/v1/{workspace}/inferences"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "inferences" in spec["components"]["schemas"][ref]["properties"]
