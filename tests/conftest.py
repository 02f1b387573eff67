from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import tests.server
from tests.server import InProcess, Server

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "roboflow"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--store", choices=("duckdb", "chdb"), default="duckdb",
                     help="the backend every test server runs on: DuckDB (embedded) or ClickHouse's engine (chdb)")


def pytest_configure(config: pytest.Config) -> None:
    tests.server.STORE = config.getoption("--store")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`process` marks the tests that need a server process (the session's `server`, their own, or
    their module's: those modules say so with `pytestmark`), `browser` those that drive Chromium,
    `chdb` those that open a chdb store themselves; `-m "not process"` is the quick in-process run."""
    for test in items:
        names = getattr(test, "fixturenames", ())
        if "tests/browser/" in test.nodeid:
            test.add_marker(pytest.mark.browser)
        if {"server", "own_server"} & set(names) or test.get_closest_marker("browser"):
            test.add_marker(pytest.mark.process)
        if "chdb_url" in names:
            test.add_marker(pytest.mark.chdb)
    # Files that start processes first; then the in-process files marked `slow`, then those that
    # ask a chdb store of their own (each question costs chdb 3 to 20 ms of CPU, whatever the
    # data), most tests first; each file's tests in their order. Under pytest-xdist (`make test`:
    # --dist loadfile --no-loadscope-reorder) the slow files then start early and the quick
    # in-process files fill in at the end, instead of one worker finishing a slow file alone while
    # the others idle.
    files: dict[str, list[pytest.Item]] = {}
    for test in items:
        files.setdefault(test.nodeid.split("::")[0], []).append(test)

    def rank(tests: list[pytest.Item]) -> tuple[bool, bool, bool, int]:
        if any(test.get_closest_marker("process") for test in tests):
            return False, False, False, 0
        slow = any(test.get_closest_marker("slow") for test in tests)
        # (the in-process app opens chdb only in the chdb pass, where only process tests run)
        chdb = any("chdb_url" in names and "app_server" not in names
                   for names in (getattr(test, "fixturenames", ()) for test in tests))
        return True, not (slow or chdb), not slow, -len(tests) if chdb else 0

    items[:] = [test for tests in sorted(files.values(), key=rank) for test in tests]


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """URLs of fresh chdb stores. The engine runs in this process and admits one data folder per
    process, so every store of the session lives in the same folder, each in a database of its own."""
    folder = tmp_path_factory.mktemp("chdb")
    counter = itertools.count()
    return lambda name: f"chdb://{folder}?database={name}_{next(counter)}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session; tests isolate themselves with their own workspace."""
    srv = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory, chdb_url: Callable[[str], str]) -> Iterator[InProcess]:
    """The app in this process for the session, on the backend of --store; tests isolate
    themselves with their own workspace, as on `server`."""
    data_dir = tmp_path_factory.mktemp("in-process") / "data"
    app = InProcess(data_dir, chdb_url("app") if tests.server.STORE == "chdb" else None).start()
    yield app
    app.stop()


@pytest.fixture
def web(app_server: InProcess) -> Iterator[httpx.Client]:
    """A client of the app in this process that sends no key of its own: for what is answered
    before, or without, a workspace's key."""
    with app_server.client() as client:
        yield client


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, on its own data dir (for restarts and first-start checks)."""
    srv = Server(tmp_path / "data").start()
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


@contextmanager
def open_workspace(server: Server | InProcess, prefix: str = "ws") -> Iterator[Workspace]:
    slug, key = server.new_workspace(prefix)
    with server.client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield Workspace(slug, key, client)


def _serving(request: pytest.FixtureRequest) -> Server | InProcess:
    """Where `ws` and `other` live: the session's server process when the test also asks for
    `server` (it talks to the process itself), else the app in this process."""
    if "server" in request.fixturenames:
        served: Server = request.getfixturevalue("server")
        return served
    app: InProcess = request.getfixturevalue("app_server")
    return app


@pytest.fixture
def ws(request: pytest.FixtureRequest) -> Iterator[Workspace]:
    with open_workspace(_serving(request)) as workspace:
        yield workspace


@pytest.fixture
def other(request: pytest.FixtureRequest) -> Iterator[Workspace]:
    """A second fresh workspace, for isolation tests."""
    with open_workspace(_serving(request), "other") as workspace:
        yield workspace


# -- helpers shared by the end-to-end tests ------------------------------------------------------

def load(name: str) -> Any:
    """A captured Roboflow payload from tests/fixtures/roboflow (without the .json)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def item(inference_id: str, model_id: str = "m/1", *, predictions: list[dict[str, Any]] | None = None,
         time_s: float | None = None, **extra: Any) -> dict[str, Any]:
    """A native ingest ITEM around a small detection result."""
    result: dict[str, Any] = {"predictions": predictions or []}
    if time_s is not None:
        result["time"] = time_s
    return {"model_id": model_id, "inference_id": inference_id, "result": result, **extra}


def box(cls: str, confidence: float, **extra: Any) -> dict[str, Any]:
    return {"x": 10.0, "y": 20.0, "width": 4.0, "height": 6.0, "class": cls, "confidence": confidence, **extra}


def ingest(ws: Workspace, items: list[dict[str, Any]]) -> dict[str, Any]:
    reply = ws.client.post(f"{ws.api}/inferences", json={"inferences": items})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def attach(ws: Workspace, entries: list[dict[str, Any]]) -> None:
    reply = ws.client.post(f"/{ws.slug}/inference-stats/metadata", json={"data": entries})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "ok"


def pages(ws: Workspace, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of the inference list, following next_cursor to the end."""
    found = []
    query: dict[str, Any] = {"limit": limit, **params}
    while True:
        reply = ws.client.get(f"{ws.api}/inferences", params=query)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        found.append(body["inferences"])
        if body["next_cursor"] is None:
            return found
        assert body["inferences"], "a page with a next_cursor is never empty"
        query["cursor"] = body["next_cursor"]


def list_all(ws: Workspace, **params: Any) -> list[dict[str, Any]]:
    """Every matching inference (pages of 1000 unless `limit` says)."""
    limit = params.pop("limit", 1000)
    return [row for page in pages(ws, limit, **params) for row in page]


EVER = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def stats(ws: Workspace, **params: Any) -> dict[str, Any]:
    """Stats over all time unless the caller narrows it."""
    reply = ws.client.get(f"{ws.api}/stats", params={**EVER, **params})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def total(ws: Workspace) -> int:
    """How many inferences the workspace holds (for "nothing was written" checks)."""
    return int(stats(ws)["totals"]["inferences"])


def field_names(ws: Workspace) -> list[str]:
    reply = ws.client.get(f"{ws.api}/metadata/fields")
    assert reply.status_code == 200, reply.text
    return [f["name"] for f in reply.json()["fields"]]
