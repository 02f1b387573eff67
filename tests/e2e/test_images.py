"""Image upload as Roboflow's clients send it (multipart, key in the query string), serving the
image and its thumbnails, refusals that keep nothing, workspace isolation, and restarts."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Workspace, ingest, item, open_workspace
from tests.server import TLS, Server

MAX_IMAGE_BYTES = 20 * 1024 * 1024


def picture(fmt: str = "PNG", size: tuple[int, int] = (40, 30), mode: str = "RGB", color: Any = (200, 30, 60)) -> bytes:
    out = io.BytesIO()
    img = Image.new(mode, size, color)
    # A gradient, so different sizes and colours give different bytes and thumbnails real content.
    for x in range(0, size[0], max(1, size[0] // 8)):
        img.putpixel((x, x * size[1] // size[0]), (0, 0, 0, 255)[: len(mode)])
    img.save(out, fmt)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(server: Server, key: str | None, data: bytes, *, project: str = "parts", name: str = "frame.jpg",
           content_type: str = "image/jpeg", params: list[tuple[str, str]] | None = None,
           extra: dict[str, str] | None = None) -> httpx.Response:
    """What the inference server's Active Learning sends: requests-style multipart, key in the URL."""
    query = [("api_key", key)] if key is not None else []
    return httpx.post(f"{server.url}/dataset/{project}/upload", params=[*query, *(params or [])],
                      files={"file": ("imageToUpload", data, content_type)}, data={"name": name, **(extra or {})},
                      timeout=60, verify=TLS)


def image_files(server: Server) -> list[Path]:
    root = server.data_dir / "images"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_not_kept(server: Server, ws: Workspace, data: bytes) -> None:
    digest = sha(data)
    assert not (server.data_dir / "images" / digest[:2] / digest[2:]).exists()
    assert not [p for p in image_files(server) if p.name.startswith(".tmp-")]
    assert ws.client.get(f"{ws.api}/images/{digest}").status_code == 404


# -- upload and serve -----------------------------------------------------------------------------

def test_upload_links_the_image_to_its_inference_and_serves_the_same_bytes(server: Server, ws: Workspace) -> None:
    ingest(ws, [item("inf-1")])
    data = picture("PNG")
    reply = upload(server, ws.key, data, content_type="image/png",
                   params=[("inference_id", "inf-1"), ("batch", "b1"), ("tag", "lineA"), ("tag", "night")],
                   extra={"metadata": '{"camera": "c1"}'})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"success": True, "id": sha(data)}

    got = ws.client.get(f"{ws.api}/inferences/inf-1/image")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["etag"] == f'"{sha(data)}"'
    assert "private" in got.headers["cache-control"]
    assert got.headers["x-content-type-options"] == "nosniff"
    again = ws.client.get(f"{ws.api}/inferences/inf-1/image", headers={"If-None-Match": got.headers["etag"]})
    assert again.status_code == 304

    by_id = ws.client.get(f"{ws.api}/images/{sha(data)}")
    assert by_id.content == data
    assert "immutable" in by_id.headers["cache-control"]

    row = ws.client.get(f"{ws.api}/inferences/inf-1").json()
    assert row["image_url"] == f"{ws.api}/inferences/inf-1/image"
    assert row["metadata"] == {"camera": "c1"}


def test_form_metadata_becomes_the_inferences_metadata(server: Server, ws: Workspace) -> None:
    ingest(ws, [item("meta-1")])
    fields = '{"camera": "c1", "n": 3, "ok": true, "ratio": 0.5, "nested": {"a": [1]}, "none": null, "empty": ""}'
    reply = upload(server, ws.key, picture("PNG", (9, 9)), params=[("inference_id", "meta-1")],
                   extra={"metadata": fields})
    assert reply.json()["success"] is True
    assert ws.client.get(f"{ws.api}/inferences/meta-1").json()["metadata"] == {
        "camera": "c1", "n": 3, "ok": True, "ratio": 0.5, "nested": '{"a":[1]}'}
    # Sent again with more: a duplicate image still gets its metadata.
    reply = upload(server, ws.key, picture("PNG", (9, 9)), params=[("inference_id", "meta-1")],
                   extra={"metadata": '{"camera": "c2"}'})
    assert reply.json()["duplicate"] is True
    assert ws.client.get(f"{ws.api}/inferences/meta-1").json()["metadata"]["camera"] == "c2"


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '{"": "empty name"}', '{"a": "' + "x" * 5000 + '"}'])
def test_bad_form_metadata_is_400_and_keeps_nothing(server: Server, ws: Workspace, bad: str) -> None:
    data = picture("PNG", (11, 3))
    reply = upload(server, ws.key, data, params=[("inference_id", "meta-bad")], extra={"metadata": bad})
    assert reply.status_code == 400, reply.text
    assert_not_kept(server, ws, data)


def test_inference_without_an_image_is_a_json_404(ws: Workspace) -> None:
    ingest(ws, [item("bare")])
    assert ws.client.get(f"{ws.api}/inferences/bare").json()["image_url"] is None
    for path in ("/inferences/bare/image", "/inferences/never-seen/image", f"/images/{'0' * 64}", "/images/nope"):
        reply = ws.client.get(f"{ws.api}{path}")
        assert reply.status_code == 404
        assert reply.json()["error"] == "Not found"


def test_inference_ids_with_slashes_reach_their_image(server: Server, ws: Workspace) -> None:
    data = picture("PNG", (12, 12))
    assert upload(server, ws.key, data, params=[("inference_id", "cam/1/frame 7")]).json()["success"]
    reply = ws.client.get(f"{ws.api}/inferences/cam%2F1%2Fframe%207/image")
    assert reply.content == data


def test_same_bytes_twice_is_a_duplicate_and_fills_a_missing_inference_id(server: Server, ws: Workspace) -> None:
    data = picture("JPEG", (64, 48))
    first = upload(server, ws.key, data)
    assert first.json() == {"success": True, "id": sha(data)}
    files_before = image_files(server)
    second = upload(server, ws.key, data, params=[("inference_id", "late")])
    assert second.status_code == 200
    assert second.json() == {"duplicate": True, "id": sha(data)}
    assert image_files(server) == files_before
    # The first upload named no inference; the duplicate's id links it.
    assert ws.client.get(f"{ws.api}/inferences/late/image").content == data
    # Once linked, a duplicate naming another inference changes nothing.
    assert upload(server, ws.key, data, params=[("inference_id", "other")]).json()["duplicate"] is True
    assert ws.client.get(f"{ws.api}/inferences/other/image").status_code == 404


@pytest.mark.parametrize(("fmt", "content_type"), [
    ("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("GIF", "image/gif"),
])
def test_every_camera_format_is_kept_with_its_content_type(server: Server, ws: Workspace, fmt: str,
                                                           content_type: str) -> None:
    data = picture(fmt, (33, 21))
    # The part's declared type is the client's guess (Active Learning always says JPEG): the bytes decide.
    reply = upload(server, ws.key, data, content_type="image/jpeg", params=[("inference_id", f"f-{fmt}")])
    assert reply.json() == {"success": True, "id": sha(data)}
    got = ws.client.get(f"{ws.api}/inferences/f-{fmt}/image")
    assert got.headers["content-type"] == content_type
    assert got.content == data


def test_thumbnails_are_bounded_keep_the_aspect_and_are_cached_beside_the_original(
        server: Server, ws: Workspace) -> None:
    data = picture("JPEG", (1000, 500))
    upload(server, ws.key, data, params=[("inference_id", "big")])
    url = f"{ws.api}/inferences/big/image"
    for params, expected in [({"size": "thumb"}, (256, 128)), ({"max": "100"}, (64, 32)),
                             ({"max": "700"}, (512, 256)), ({"max": "5"}, (64, 32)), ({"size": "1024"}, (1000, 500))]:
        reply = ws.client.get(url, params=params)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(reply.content)) as thumb:
            assert thumb.size == expected, params
    # Past the original's size the original itself is served, never scaled up.
    assert ws.client.get(url, params={"max": "1024"}).content == data
    digest = sha(data)
    cached = sorted(p.name for p in (server.data_dir / "images" / digest[:2]).glob(f"{digest[2:]}.t*"))
    assert cached == [f"{digest[2:]}.t{n}.jpg" for n in (256, 512, 64)]
    etag = ws.client.get(url, params={"size": "thumb"}).headers["etag"]
    assert etag == f'"{digest}-t256"'
    assert ws.client.get(url, params={"size": "thumb"}, headers={"If-None-Match": etag}).status_code == 304
    assert ws.client.get(url, params={"size": "huge"}).status_code == 400


def test_a_transparent_image_gets_a_png_thumbnail(server: Server, ws: Workspace) -> None:
    data = picture("PNG", (600, 300), mode="RGBA", color=(10, 200, 10, 128))
    upload(server, ws.key, data, params=[("inference_id", "alpha")])
    reply = ws.client.get(f"{ws.api}/inferences/alpha/image", params={"size": "thumb"})
    assert reply.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(reply.content)) as thumb:
        assert (thumb.size, thumb.mode) == ((256, 128), "RGBA")


def test_a_plain_base64_body_is_accepted_too(server: Server, ws: Workspace) -> None:
    """roboflow-python's older upload: the image as base64 in the body, the name in the URL."""
    data = picture("PNG", (17, 9))
    reply = httpx.post(f"{server.url}/dataset/parts/upload", params={"api_key": ws.key, "name": "a.png"},
                       content=base64.b64encode(data),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.json() == {"success": True, "id": sha(data)}
    assert ws.client.get(f"{ws.api}/images/{sha(data)}").content == data


# -- refusals keep nothing ------------------------------------------------------------------------

def _bomb_png(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few bytes declaring huge dimensions."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


def _real_bomb() -> bytes:
    """60 million pixels of one colour: a real, decodable PNG of a few kilobytes."""
    out = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(out, "PNG")
    return out.getvalue()


def _tiff() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "TIFF")
    return out.getvalue()


@pytest.mark.parametrize("bad", ["text", "tiff", "truncated", "bomb-header", "bomb-real", "empty"])
def test_not_an_image_or_a_decompression_bomb_is_400(server: Server, ws: Workspace, bad: str) -> None:
    data = {
        "text": lambda: b"hello, not an image",
        "tiff": _tiff,
        "truncated": lambda: picture("PNG", (300, 300))[:200],
        "bomb-header": lambda: _bomb_png(100_000, 100_000),
        "bomb-real": _real_bomb,
        "empty": lambda: b"",
    }[bad]()
    assert len(data) < 1_000_000
    reply = upload(server, ws.key, data, params=[("inference_id", "bad")])
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "Invalid request"
    assert_not_kept(server, ws, data)
    assert ws.client.get(f"{ws.api}/inferences/bad/image").status_code == 404


def test_oversize_image_is_413_and_keeps_nothing(server: Server, ws: Workspace) -> None:
    # Over the image limit but inside the form's allowance: refused after reading.
    data = picture("PNG") + b"\0" * (MAX_IMAGE_BYTES + 1024)
    reply = upload(server, ws.key, data, params=[("inference_id", "huge")])
    assert reply.status_code == 413, reply.text
    assert_not_kept(server, ws, data)
    # Past the whole upload's limit: refused on the declared length.
    data = b"\0" * (MAX_IMAGE_BYTES + 2 * 1024 * 1024)
    assert upload(server, ws.key, data).status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        for _ in range(22):
            yield b"\0" * (1 << 20)

    reply = httpx.post(f"{server.url}/dataset/parts/upload", params={"api_key": ws.key}, content=chunks(),
                       headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert reply.status_code == 413
    assert ws.client.get(f"{ws.api}/inferences/huge/image").status_code == 404


def test_a_form_without_a_file_is_400(server: Server, ws: Workspace) -> None:
    reply = httpx.post(f"{server.url}/dataset/parts/upload", params={"api_key": ws.key},
                       data={"name": "x"}, files={"other": (None, "text")})
    assert reply.status_code == 400
    assert "file" in reply.json()["detail"]


# -- keys and workspaces --------------------------------------------------------------------------

def test_upload_needs_a_valid_key(server: Server, ws: Workspace) -> None:
    data = picture("PNG", (5, 5))
    for key in (None, "not-a-real-key"):
        reply = upload(server, key, data)
        assert reply.status_code == 401
        assert reply.json()["error"] == "Unauthorized"
    reply = httpx.post(f"{server.url}/dataset/parts/upload", headers={"Authorization": f"Bearer {ws.key}"},
                       files={"file": ("a.png", data, "image/png")})
    assert reply.json() == {"success": True, "id": sha(data)}


def test_workspaces_never_see_each_others_images(server: Server, ws: Workspace, other: Workspace) -> None:
    data = picture("PNG", (7, 9))
    assert upload(server, ws.key, data, params=[("inference_id", "shared-id")]).json()["success"] is True
    # Another workspace's key: refused on this workspace's paths, without saying whether it exists.
    for path in ("/inferences/shared-id/image", f"/images/{sha(data)}", "/inferences/none/image"):
        reply = other.client.get(f"{ws.api}{path}")
        assert reply.status_code == 403
        assert reply.json() == {"error": "Forbidden", "detail": "this API key does not belong to that workspace"}
        assert httpx.get(f"{server.url}{ws.api}{path}").status_code == 401
    # Its own paths do not hold the image.
    assert other.client.get(f"{other.api}/inferences/shared-id/image").status_code == 404
    assert other.client.get(f"{other.api}/images/{sha(data)}").status_code == 404
    # The same bytes are new to the other workspace.
    assert upload(server, other.key, data, params=[("inference_id", "shared-id")]).json() \
        == {"success": True, "id": sha(data)}
    assert other.client.get(f"{other.api}/inferences/shared-id/image").content == data


# -- restarts -------------------------------------------------------------------------------------

def test_images_survive_a_restart(own_server: Server) -> None:
    with open_workspace(own_server) as ws:
        data = picture("JPEG", (300, 200))
        assert upload(own_server, ws.key, data, params=[("inference_id", "keep")]).json()["success"] is True
        assert ws.client.get(f"{ws.api}/inferences/keep/image", params={"size": "thumb"}).status_code == 200
    own_server.kill()  # acknowledged means committed, file and row
    restarted = Server(own_server.data_dir).start()
    try:
        with httpx.Client(base_url=restarted.url, headers={"Authorization": f"Bearer {ws.key}"}, timeout=30) as c:
            assert c.get(f"{ws.api}/inferences/keep/image").content == data
            with Image.open(io.BytesIO(c.get(f"{ws.api}/inferences/keep/image", params={"size": "thumb"}).content)) \
                    as thumb:
                assert thumb.size == (256, 171)
        assert upload(restarted, ws.key, data).json() == {"duplicate": True, "id": sha(data)}
    finally:
        restarted.stop()
