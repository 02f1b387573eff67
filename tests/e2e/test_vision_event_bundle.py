"""`POST /vision-events/bundle` and the edge event store's `POST /v2/events` over HTTP, on the app in
this process: events with their images stored through the same path as `POST /vision-events`, and
every hostile archive or bad body refused with a 400 (413 past the size cap) that stores nothing:
no event, no inference, no image."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Workspace, list_all
from tests.e2e.test_keys import as_key, new_key
from tests.e2e.test_vision_events import detections, ids, use_case
from tests.server import InProcess


def jpeg(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


def payload(uc: str | None, event_id: str = "b-1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"bundleFormatVersion": 1, "eventId": event_id, "eventType": "quality_check",
                            "timestamp": datetime.now(UTC).isoformat(), "eventData": {"result": "fail"},
                            "customMetadata": {"temperature": 151}, "displayImagePosition": 0,
                            "images": [{"file": "images/out.jpg", "inputFile": "images/in.jpg", "label": "workflow",
                                        "objectDetections": detections(2)}], **extra}
    if uc is not None:
        body["useCaseId"] = uc
    return body


def tar(members: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = True) -> bytes:
    """An archive of (name, bytes) files and hand-made members (links, devices)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w:") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle(body: dict[str, Any], *extra: tarfile.TarInfo | tuple[str, bytes], gz: bool = True,
           out: bytes | None = None) -> bytes:
    return tar([("payload.json", json.dumps(body).encode()), ("images/out.jpg", out or jpeg()),
                ("images/in.jpg", jpeg((10, 10, 10))), *extra], gz)


def post(ws: Workspace, body: bytes, **params: str) -> httpx.Response:
    return ws.client.post("/vision-events/bundle", content=body, params=params,
                          headers={"Content-Type": "application/gzip"})


def stored_nothing(ws: Workspace, uc: str, *images: bytes) -> None:
    assert ids(ws, uc) == []
    assert list_all(ws) == []
    for data in images:
        assert ws.client.get(f"{ws.api}/images/{sha256(data).hexdigest()}").status_code == 404


# -- bundles ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["tar.gz", "tar"])
def test_a_bundle_becomes_an_event_with_its_images(ws: Workspace, gz: bool) -> None:
    uc = use_case(ws)
    reply = post(ws, bundle(payload(uc), gz=gz))
    assert reply.status_code == 201, reply.text
    answer = reply.json()
    assert answer["eventId"] == "b-1" and answer["created"] is True
    assert set(answer["sourceIds"]) == {"images/out.jpg", "images/in.jpg"}
    [event] = ws.client.post("/vision-events/query", json={"useCaseId": uc}).json()["events"]
    [image] = event["images"]
    assert image["sourceId"] == answer["sourceIds"]["images/out.jpg"]
    assert image["inputSourceId"] == answer["sourceIds"]["images/in.jpg"]
    assert "file" not in image and "bundleFormatVersion" not in event
    assert ws.client.get(f"{ws.api}/images/{image['sourceId']}").content == jpeg()
    [row] = list_all(ws)
    assert row["inference_id"] == "b-1" and row["n_predictions"] == 2
    assert row["image"] == {"width": 64, "height": 48}
    assert row["metadata"]["temperature"] == 151


def test_the_use_case_comes_from_the_query_when_the_payload_has_none(ws: Workspace) -> None:
    uc = use_case(ws)
    assert post(ws, bundle(payload(None))).status_code == 400
    reply = post(ws, bundle(payload(None)), useCaseId=uc)
    assert reply.status_code == 201, reply.text
    assert ids(ws, uc) == ["b-1"]
    # A re-sent bundle replaces its event, as a re-sent event does.
    assert post(ws, bundle(payload(uc, eventData={"result": "pass"}))).status_code == 201
    assert ids(ws, uc) == ["b-1"]


def test_the_key_may_be_in_the_query_and_needs_the_ingest_scope(app_server: InProcess, ws: Workspace) -> None:
    uc = use_case(ws)
    with app_server.client() as anonymous:
        assert anonymous.post("/vision-events/bundle", content=bundle(payload(uc))).status_code == 401
        reply = anonymous.post("/vision-events/bundle", content=bundle(payload(uc)), params={"api_key": ws.key})
        assert reply.status_code == 201, reply.text
    reader, _ = new_key(ws, "reader", ["read"])
    with as_key(app_server, reader) as client:
        assert client.post("/vision-events/bundle", content=bundle(payload(uc, "b-2"))).status_code == 403
    assert ids(ws, uc) == ["b-1"]


def _link(name: str, kind: bytes, target: str = "payload.json") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _gz_bomb() -> bytes:
    """A tar.gz of a few hundred kB that unpacks to 110 MiB of zeros."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        block = bytes(1024 * 1024)
        for _ in range(110):
            stream.write(block)
    return out.getvalue()


HOSTILE: dict[str, Any] = {
    "empty body": lambda uc: b"",
    "not a tar": lambda uc: b"this is not an archive at all" * 100,
    "truncated gzip": lambda uc: bundle(payload(uc))[:200],
    "no payload": lambda uc: tar([("images/out.jpg", jpeg())]),
    "payload not JSON": lambda uc: tar([("payload.json", b"{nope"), ("images/out.jpg", jpeg())]),
    "payload not an object": lambda uc: tar([("payload.json", b"[1, 2]")]),
    "no format version": lambda uc: bundle({k: v for k, v in payload(uc).items() if k != "bundleFormatVersion"}),
    "format version 2": lambda uc: bundle(payload(uc, bundleFormatVersion=2)),
    "path climbing out": lambda uc: bundle(payload(uc), ("../../etc/cron.d/evil", b"x")),
    "absolute path": lambda uc: bundle(payload(uc), ("/etc/passwd", b"x")),
    "climbing image path": lambda uc: bundle(payload(uc), ("images/../../x.jpg", jpeg())),
    "symlink": lambda uc: bundle(payload(uc), _link("images/link.jpg", tarfile.SYMTYPE, "/etc/passwd")),
    "hard link": lambda uc: bundle(payload(uc), _link("images/hard.jpg", tarfile.LNKTYPE)),
    "device": lambda uc: bundle(payload(uc), _link("images/dev", tarfile.CHRTYPE)),
    "fifo": lambda uc: bundle(payload(uc), _link("images/fifo", tarfile.FIFOTYPE)),
    "duplicate member": lambda uc: bundle(payload(uc), ("images/out.jpg", jpeg((1, 2, 3)))),
    "huge member": lambda uc: bundle(payload(uc), ("images/huge.jpg", bytes(21 * 1024 * 1024))),
    "decompression bomb": lambda uc: _gz_bomb(),
    "too many members": lambda uc: bundle(payload(uc), *((f"other/{i}", b"") for i in range(300))),
    "image member missing": lambda uc: tar([("payload.json", json.dumps(payload(uc)).encode()),
                                            ("images/in.jpg", jpeg((10, 10, 10)))]),
    "image not an image": lambda uc: bundle(payload(uc), out=b"GIF89a but not really"),
    "both file and sourceId": lambda uc: bundle(payload(uc, images=[{"file": "images/out.jpg", "sourceId": "a"}])),
    "bad event": lambda uc: bundle(payload(uc, eventType="nope")),
    "metadata past its limits": lambda uc: bundle(payload(uc, customMetadata={"bad.key": 1})),
    "unknown use case": lambda uc: bundle(payload("no-such-use-case")),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_or_broken_bundle_is_400_and_stores_nothing(ws: Workspace, name: str) -> None:
    uc = use_case(ws)
    reply = post(ws, HOSTILE[name](uc))
    assert reply.status_code == 400, reply.text
    assert set(reply.json()) == {"error", "detail"} and reply.json()["detail"]
    stored_nothing(ws, uc, jpeg(), jpeg((10, 10, 10)))


def test_an_archived_use_case_refuses_the_bundle_and_keeps_no_image(ws: Workspace) -> None:
    uc = use_case(ws)
    assert ws.client.post(f"/vision-events/use-cases/{uc}/archive").status_code == 200
    reply = post(ws, bundle(payload(uc)))
    assert reply.status_code == 400 and "archived" in reply.json()["detail"]
    stored_nothing(ws, uc, jpeg(), jpeg((10, 10, 10)))


def test_a_bundle_over_25_mib_is_413(ws: Workspace) -> None:
    uc = use_case(ws)
    reply = post(ws, bundle(payload(uc)) + bytes(25 * 1024 * 1024))
    assert reply.status_code == 413, reply.text
    stored_nothing(ws, uc)
