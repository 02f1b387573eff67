"""The API reference works without the internet: every asset it loads is served locally."""

from __future__ import annotations

import re

import httpx


def test_api_reference_loads_only_local_assets(web: httpx.Client) -> None:
    page = web.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is fetched from elsewhere"
        assert web.get(asset).status_code == 200
    spec = web.get("/openapi.json").json()
    assert "/api/v1/{workspace}/inferences" in spec["paths"]
    body = spec["paths"]["/api/v1/{workspace}/inferences"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "inferences" in spec["components"]["schemas"][ref]["properties"]
