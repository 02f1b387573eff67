"""Schema-driven and property-based fuzzing of the app (reliability promise 3), in this process.

Schemathesis reads the server's own `/openapi.json` and generates requests for every operation in
it, valid ones (from the schemas) and invalid ones (negated schemas); hypothesis generates query
strings for the read routes, whose filters are free-form (`meta.<field>=`) and so not in the
schema. Every answer must be below 500 and arrive within the client's timeout, and a refused
request must leave the workspace as it was (counted through the API before and after).

Example counts are kept small so the suite stays fast; docs/reliability.md records them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.conftest import EVER, Workspace, item, open_workspace
from tests.server import InProcess

pytestmark = pytest.mark.slow  # generating the cases takes the time, and it is one test

# Cases per operation and generation mode (so twice this per route); per read route below.
SCHEMA_EXAMPLES = 15
QUERY_EXAMPLES = 30
TIMEOUT_S = 15.0
FUZZ_SETTINGS = settings(max_examples=SCHEMA_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


def snapshot(ws: Workspace) -> tuple[Any, ...]:
    """What a workspace holds, as far as its API tells: inferences, metadata, devices, fields."""
    stats = ws.client.get(f"{ws.api}/stats", params=EVER)
    fields = ws.client.get(f"{ws.api}/metadata/fields", params={"top": "1000"})
    devices = ws.client.get(f"{ws.api}/devices", params=EVER)
    assert stats.status_code == fields.status_code == devices.status_code == 200
    return (stats.json()["totals"]["inferences"], fields.json()["fields"],
            sorted(d["device_id"] for d in devices.json()["devices"]))


@pytest.fixture(scope="module")
def fuzzed(app_server: InProcess) -> Iterator[Workspace]:
    """A workspace holding a little data, so reads have something to find and writes to disturb.
    The app runs in this process: the promise is about what the app answers, which a socket and a
    process of its own would only make slower to ask (requests past what the HTTP server parses
    reach the app here, so it is asked more, not less; a hang still fails on the timeout)."""
    with open_workspace(app_server, "fuzz") as ws:
        reply = ws.client.post(f"{ws.api}/inferences", json={"inferences": [
            item(f"seed-{n}", device_id="cam-1", tags=["lineA"], metadata={"site": "a"}) for n in range(3)]})
        assert reply.status_code == 200
        yield ws


def _call(ws: Workspace, case: schemathesis.Case) -> tuple[int, str, str]:
    """Sends a generated case with the workspace's key and a hard timeout (a hang fails the test).
    The bytes are those schemathesis sends itself (its `requests` arguments, prepared by
    `requests`), carried by the workspace's client into the app."""
    kwargs = case.as_transport_kwargs(base_url=InProcess.url, headers={"Authorization": f"Bearer {ws.key}"})
    prepared = requests.Request(**kwargs).prepare()
    body = prepared.body
    assert prepared.method is not None and prepared.url is not None and isinstance(body, bytes | str | None)
    headers = [(k, v if isinstance(v, str) else v.decode("latin-1")) for k, v in prepared.headers.items()]
    reply = ws.client.request(prepared.method, prepared.url, headers=headers, content=body, timeout=TIMEOUT_S)
    # Decoded leniently: only the failure message reads it, and some answers are binary (zip, images).
    text = reply.content.decode("utf-8", "replace")
    return reply.status_code, text, reply.headers.get("content-type", "")


def _fuzz(ws: Workspace, operation: Any, mode: GenerationMode, label: str,
          counts: Counter[str], statuses: Counter[str], failures: list[str]) -> None:
    """Runs one operation's generated cases in one mode, recording 5xx answers in `failures`."""

    state = {"before": snapshot(ws)}
    reads = operation.method.upper() == "GET"  # checked once after all its cases: reads never write

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode), keep_path=st.integers(0, 3))
    def run(case: schemathesis.Case, keep_path: int) -> None:
        # Most cases name the fuzz workspace (to get past auth into the handler); a quarter keep
        # the generated path (unknown or hostile workspace names must be refused too).
        if keep_path and "workspace" in (case.path_parameters or {}):
            case.path_parameters["workspace"] = ws.slug
        status, text, content_type = _call(ws, case)
        counts[label] += 1
        statuses[f"{label} {status}"] += 1
        if status >= 500:
            failures.append(f"{label}: {status} {text[:200]} for {case.as_curl_command()}")
        elif status >= 400:
            assert content_type.startswith("application/json"), (label, status, content_type)
            if not reads:
                assert snapshot(ws) == state["before"], f"{label}: a refused request changed the workspace"
        elif not reads:
            state["before"] = snapshot(ws)  # an accepted write may change it

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE, label
    if reads:
        assert snapshot(ws) == state["before"], f"{label}: a read changed the workspace"


def test_every_route_in_the_schema_survives_generated_requests(fuzzed: Workspace) -> None:
    spec = fuzzed.client.get("/openapi.json").json()
    # A dangling $ref makes a generator send no body at all: every reference must resolve.
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs and refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    schema = schemathesis.openapi.from_dict(spec)
    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read an operation: {result}"
        operations.append(result.ok())
    assert len(operations) >= 16, "the schema lost routes"
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        # Path parameters are plain strings: with no body, query or header to break, an
        # operation has no invalid requests to generate.
        modes = [GenerationMode.POSITIVE]
        if len(operation.body) or len(operation.query) or len(operation.headers):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            _fuzz(fuzzed, operation, mode, label, counts, statuses, failures)
    print("\nschemathesis cases per route:", dict(counts), "\nanswers:", dict(sorted(statuses.items())))
    assert not failures, "\n".join(failures[:10])
    assert all(counts[f"{op.method.upper()} {op.path}"] > 0 for op in operations)


# -- query strings of the read routes ---------------------------------------------------------------

_NAMES = ["from", "to", "model_id", "device_id", "class", "tag", "min_confidence", "max_confidence", "limit",
          "cursor", "bucket", "group_by", "top", "silence_s", "startTime", "endTime", "modelNames", "image_index",
          "size", "max", "bins", "columns", "meta.site", "meta.", "meta.' OR 1=1 --", "api_key"]
_HOSTILE = ["' OR '1'='1", "1; DROP TABLE inferences; --", "\") UNION SELECT * FROM workspaces --", "%00",
            "\u0000", "<script>alert(1)</script>", "NaN", "-Infinity", "1e309", "-1e20", "9999999999999",
            "0001-01-01", "9999-12-31T23:59:59+23:59", "\udcff", "\ud800", "a" * 5000, "../../etc/passwd",
            # Past what the stores hold: 32 and 64 bits, signed and not, and far beyond.
            *(str(n) for n in (2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30))]
_VALUES = st.one_of(st.sampled_from(_HOSTILE), st.text(max_size=40), st.integers().map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(str))
_KEYS = st.one_of(st.sampled_from(_NAMES), st.text(min_size=1, max_size=20),
                  st.text(min_size=1, max_size=20).map(lambda s: "meta." + s))
_QUERIES = st.lists(st.tuples(_KEYS, _VALUES), max_size=6)


def _read_routes(ws: Workspace) -> list[str]:
    """Every GET under a workspace in the schema, path parameters filled with the seeded data."""
    spec = ws.client.get("/openapi.json").json()
    fill = {"workspace": ws.slug, "inference_id": "seed-0", "image_id": "0" * 64}
    routes = []
    for path, ops in spec["paths"].items():
        if "get" in ops and "{workspace}" in path:
            routes.append(re.sub(r"\{(\w+)\}", lambda m: fill.get(m.group(1), "x"), path))
    return routes


def _fuzz_queries(ws: Workspace, url: str, seen: Counter[str]) -> None:
    @settings(max_examples=QUERY_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(query=_QUERIES)
    def run(query: list[tuple[str, str]]) -> None:
        # Lone surrogates cannot be sent as UTF-8; httpx would refuse them before the server sees them.
        query = [(k.encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
                  v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")) for k, v in query]
        reply = ws.client.get(url, params=[q for q in query if q[0] != "api_key"], timeout=TIMEOUT_S)
        seen[url] += 1
        assert reply.status_code < 500, (url, query, reply.text)
        assert reply.headers["content-type"].startswith("application/json") or reply.status_code in (200, 304)

    run()


def test_read_routes_answer_any_query_string_below_500(fuzzed: Workspace) -> None:
    """Every read route of the schema (found at run time), QUERY_EXAMPLES query strings each."""
    routes = _read_routes(fuzzed)
    assert len(routes) >= 13, routes
    before = snapshot(fuzzed)
    seen: Counter[str] = Counter()
    for url in routes:
        _fuzz_queries(fuzzed, url, seen)
    print("\nquery strings per read route:", dict(seen))
    assert all(seen[url] == QUERY_EXAMPLES for url in routes)
    assert snapshot(fuzzed) == before, "a read changed the workspace"


# -- integers past what the stores hold, in every body that takes one ---------------------------------

INT64 = (-(2**63), 2**63 - 1)
PAST_INT64 = (2**63, 2**64, -(2**63) - 1, 10**30)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _integers(spec: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...] = (),
              seen: frozenset[str] = frozenset()) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any], bool]]:
    """Every integer in a body schema: (its path, where an int is an array's item as 0; its schema;
    whether text is accepted in its place, as for metadata values, which are kept as text)."""
    ref = schema.get("$ref")
    if ref in seen:
        return
    schema = _resolve(spec, schema)
    seen = seen | {ref} if ref else seen
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        text = any(_resolve(spec, b).get("type") == "string" for b in branches)
        for branch in branches:
            for found, int_schema, as_text in _integers(spec, branch, path, seen):
                yield found, int_schema, as_text or (text and found == path)
    if schema.get("type") == "integer":
        yield path, schema, False
    for name, sub in schema.get("properties", {}).items():
        yield from _integers(spec, sub, (*path, name), seen)
    if isinstance(schema.get("items"), dict):
        yield from _integers(spec, schema["items"], (*path, 0), seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _integers(spec, schema["additionalProperties"], (*path, "k"), seen)


def _body(path: tuple[str | int, ...], value: int) -> Any:
    """A JSON body holding only `value` at `path` (msgspec meets it before any field it lacks)."""
    body: Any = value
    for step in reversed(path):
        body = [body] if isinstance(step, int) else {step: body}
    return body


def test_every_integer_a_body_takes_is_bounded_by_what_both_stores_hold(fuzzed: Workspace) -> None:
    """Every integer of every JSON body in the schema declares bounds within 64 bits, and a value
    past them (or past 64 bits) is a 400 that names the field, never a 500 from the engine."""
    spec = fuzzed.client.get("/openapi.json").json()
    checked: list[str] = []
    # Every request below is refused, so the workspace must stay as it is now throughout: each
    # answer is checked against this one look, not a fresh one taken before it.
    before = snapshot(fuzzed)
    for route, operations in spec["paths"].items():
        for method, operation in operations.items():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            url = route.replace("{workspace}", fuzzed.slug)
            for path, schema, as_text in _integers(spec, media["schema"]):
                name = ".".join(str(p) for p in path)
                label = f"{method.upper()} {route} {name}"
                checked.append(label)
                if as_text:
                    continue  # kept as text (a metadata value): any number is a string of digits
                low, high = schema.get("minimum"), schema.get("maximum")
                assert low is not None and high is not None and INT64[0] <= low <= high <= INT64[1], (
                    f"{label}: unbounded integer ({low}, {high})")
                for value in (*PAST_INT64, high + 1, low - 1):
                    reply = fuzzed.client.request(method, url, json=_body(path, value), timeout=TIMEOUT_S)
                    assert reply.status_code == 400, (label, value, reply.status_code, reply.text)
                    leaf = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
                    assert leaf in json.dumps(reply.json()["detail"]), (label, value, reply.text)
                    assert snapshot(fuzzed) == before, f"{label}: a refused request changed the workspace"
    print("\nintegers checked:", checked)
    assert any("max_inferences" in c for c in checked), "the retention policy's count is in the schema"
