from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server import Server

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "roboflow"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session; tests isolate themselves with their own workspace."""
    srv = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield srv
    srv.stop()


@dataclass
class Workspace:
    slug: str
    key: str
    client: httpx.Client

    @property
    def api(self) -> str:
        return f"/api/v1/{self.slug}"


@pytest.fixture
def ws(server: Server) -> Iterator[Workspace]:
    slug, key = server.new_workspace()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield Workspace(slug, key, client)
