"""Image files: validation limits, content addressing, atomic writes, thumbnail sizes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from inferwatch import image_store, images
from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import limits


def _png(size: tuple[int, int] = (10, 6)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def test_inspect_gives_identity_type_and_size() -> None:
    data = _png()
    checked = images.inspect(data)
    assert checked == images.Checked(hashlib.sha256(data).hexdigest(), "image/png", 10, 6, len(data))


def test_inspect_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_IMAGE_BYTES", 50)
    with pytest.raises(PayloadTooLarge):
        images.inspect(_png())
    monkeypatch.undo()
    monkeypatch.setattr(limits, "MAX_IMAGE_PIXELS", 59)
    with pytest.raises(InvalidRequest, match="10x6"):
        images.inspect(_png())
    monkeypatch.undo()
    with pytest.raises(InvalidRequest, match="not an image"):
        images.inspect(b"GIF89a but not really")


def test_thumb_size_never_exceeds_the_asked_size_past_the_smallest() -> None:
    assert [images.thumb_size(n) for n in (1, 64, 100, 256, 300, 1024, 10**9)] == [64, 64, 64, 256, 256, 1024, 1024]


def test_files_are_content_addressed_and_written_once(tmp_path: Path) -> None:
    files = image_store.LocalImages(tmp_path)
    data = _png()
    digest = hashlib.sha256(data).hexdigest()
    assert files.save(digest, data) is True
    assert files.save(digest, data) is False
    assert files.path(digest) == tmp_path / digest[:2] / digest[2:]
    assert files.read(digest) == data
    assert [p.name for p in (tmp_path / digest[:2]).iterdir()] == [digest[2:]]
    with pytest.raises(ValueError):
        files.path("../../etc/passwd")
    with pytest.raises(FileNotFoundError):
        files.read("ab" * 32)


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = image_store.LocalImages(tmp_path)

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(image_store.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        files.save("ab" * 32, b"bytes")
    assert list((tmp_path / "ab").iterdir()) == []


@pytest.mark.parametrize("kind", ["local", "object"])
def test_thumbnails_are_bounded_made_once_and_kept_beside_the_original(tmp_path: Path, kind: str) -> None:
    files: image_store.ImageStore = (
        image_store.LocalImages(tmp_path) if kind == "local" else image_store.ObjectImages(tmp_path.as_uri())
    )
    data = _png((300, 100))
    digest = hashlib.sha256(data).hexdigest()
    assert files.save(digest, data) is True
    assert files.save(digest, data) is False
    assert files.read(digest) == data
    with pytest.raises(ValueError):
        files.thumbnail(digest, 100)
    thumb, content_type = files.thumbnail(digest, 64)
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (64, 21)
    assert (tmp_path / digest[:2] / f"{digest[2:]}.t64.jpg").read_bytes() == thumb
    assert files.thumbnail(digest, 64) == (thumb, content_type)
    with pytest.raises(FileNotFoundError):
        files.read("cd" * 32)


def test_no_url_means_the_data_dir_and_a_url_means_an_object_store(tmp_path: Path) -> None:
    local = image_store.open_image_store(None, tmp_path)
    assert isinstance(local, image_store.LocalImages) and local.root == tmp_path / "images"
    assert isinstance(image_store.open_image_store(tmp_path.as_uri(), tmp_path), image_store.ObjectImages)
