"""Where uploaded images' bytes are kept: files under the data dir, or an object store.

Objects are named by the SHA-256 of their bytes, `ab/cdef...` (first two hex digits as a folder),
so identical bytes are kept once whichever workspace sends them; the `images` table says which
workspace holds which image. Thumbnails are made on first request and kept beside the original
(`ab/cdef....t256.jpg`); they are caches, safe to delete.

The default is a folder of the data dir, written to a temporary name, flushed to disk and renamed,
so a reader never sees half a file and an acknowledged upload survives a power cut. With
`--image-store URL` (`s3://bucket/prefix`, `gs://...`, `az://...`, `file:///path`; credentials
and endpoint from the usual `AWS_*` / `GOOGLE_*` / `AZURE_*` variables) the bytes go to that store
through obstore instead, whose PUT is atomic, so several replicas of the server can share it.
"""

from __future__ import annotations

import logging
import os
import secrets
from abc import ABC, abstractmethod
from pathlib import Path

import obstore
from obstore.store import ObjectStore, from_url

from inferwatch import images

log = logging.getLogger(__name__)


def open_image_store(url: str | None, data_dir: Path) -> ImageStore:
    """The store named by `url`, or the data dir's `images` folder when there is none."""
    if not url:
        return LocalImages(data_dir / "images")
    return ObjectImages(url)


class ImageStore(ABC):
    """Content-addressed image bytes with their thumbnails. `read` raises FileNotFoundError for
    bytes that are not there (a row naming a file someone deleted)."""

    @abstractmethod
    def _get(self, key: str) -> bytes: ...

    @abstractmethod
    def _put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _exists(self, key: str) -> bool: ...

    @staticmethod
    def key(sha256: str) -> str:
        if not images.is_sha256(sha256):
            raise ValueError("not a SHA-256")
        return f"{sha256[:2]}/{sha256[2:]}"

    def save(self, sha256: str, data: bytes) -> bool:
        """Stores the bytes unless they are there already; True if this call stored them."""
        key = self.key(sha256)
        if self._exists(key):
            return False
        self._put(key, data)
        return True

    def read(self, sha256: str) -> bytes:
        return self._get(self.key(sha256))

    def thumbnail(self, sha256: str, size: int) -> tuple[bytes, str]:
        """The image scaled to fit in size x size, made once and then kept beside the original.

        The caller serves the original instead when it already fits.
        """
        if size not in images.THUMB_SIZES:
            raise ValueError(f"thumbnail size {size} is not one of {images.THUMB_SIZES}")
        key = self.key(sha256)
        for ext, content_type in images.THUMB_FORMATS:
            try:
                return self._get(f"{key}.t{size}.{ext}"), content_type
            except FileNotFoundError:
                continue
        data, ext, content_type = images.make_thumbnail(self._get(key), size)
        try:
            self._put(f"{key}.t{size}.{ext}", data)
        except OSError as exc:  # a full disk: served all the same, made again next time
            log.warning("thumbnail of %s not kept: %s", sha256, exc)
        return data, content_type


class LocalImages(ImageStore):
    """Files under a folder of the data dir."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / self.key(sha256)

    def _get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def _exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def _put(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}-{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class ObjectImages(ImageStore):
    """Objects in an object store (S3, GCS, Azure, or a `file://` folder), through obstore."""

    def __init__(self, url: str) -> None:
        self.url = url
        # A `file://` folder is made on first use, as the data dir's own one is.
        self.store: ObjectStore = from_url(url, mkdir=True) if url.startswith("file:") else from_url(url)

    def _get(self, key: str) -> bytes:
        return bytes(obstore.get(self.store, key).bytes())

    def _exists(self, key: str) -> bool:
        try:
            obstore.head(self.store, key)
        except FileNotFoundError:
            return False
        return True

    def _put(self, key: str, data: bytes) -> None:
        obstore.put(self.store, key, data)
