"""Uploaded images: validated with Pillow, kept as content-addressed files under the data dir.

An image's file is `<data_dir>/images/ab/cdef...`, named by the SHA-256 of its bytes (first two
hex digits as a folder), so identical bytes are kept once whichever workspace sends them; the
`images` table says which workspace holds which image. Files are written to a temporary name in
the same folder, flushed, then renamed: a reader never sees half a file. Thumbnails are made on
first request and kept beside the original (`<sha>.t256.jpg`); they are caches, safe to delete.

An object store instead of the data dir is not supported yet.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import limits

# Formats a camera or the inference server sends; anything else is refused (no TIFF, PSD, EPS...).
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
FORMATS = tuple(CONTENT_TYPES)
THUMB_SIZES = (64, 128, 256, 512, 1024)
DEFAULT_THUMB = 256

# Pillow's own guard (DecompressionBombError past twice this) backs up the explicit check in
# `inspect`, which refuses every image past it; its warning (past once this) would only repeat
# that check, and a warnings filter set per call is not thread-safe.
Image.MAX_IMAGE_PIXELS = limits.MAX_IMAGE_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# A decoded image of the largest size takes up to 200 MB (50 MP, RGBA): at most two are decoded
# at once (one per core), whatever the number of uploads and thumbnail requests in flight.
_DECODING = threading.BoundedSemaphore(2)


@dataclass(frozen=True, slots=True)
class Checked:
    sha256: str
    content_type: str
    width: int
    height: int
    size_bytes: int


def inspect(data: bytes) -> Checked:
    """The image's identity and facts, or 413 (too many bytes) / 400 (not an image of ours)."""
    if len(data) > limits.MAX_IMAGE_BYTES:
        raise PayloadTooLarge(f"image over {limits.MAX_IMAGE_BYTES} bytes")
    if not data:
        raise InvalidRequest("the image file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            width, height = img.size
            fmt = img.format or ""
            if width * height > limits.MAX_IMAGE_PIXELS:
                raise InvalidRequest(
                    f"image of {width}x{height} pixels is over the limit of {limits.MAX_IMAGE_PIXELS}"
                )
            # Decode it all: a truncated or corrupt file is refused now, not when shown.
            with _DECODING:
                img.load()
    except Image.DecompressionBombError:
        raise InvalidRequest(f"image is over the limit of {limits.MAX_IMAGE_PIXELS} pixels") from None
    except UnidentifiedImageError:
        raise InvalidRequest(f"not an image; send one of {', '.join(FORMATS)}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"the image cannot be decoded: {exc}") from None
    if fmt not in CONTENT_TYPES:  # pragma: no cover - Image.open was limited to these
        raise InvalidRequest(f"not an image; send one of {', '.join(FORMATS)}")
    return Checked(hashlib.sha256(data).hexdigest(), CONTENT_TYPES[fmt], width, height, len(data))


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class ImageFiles:
    """The folder of image files: `root/ab/cdef...` by SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a SHA-256")
        return self.root / sha256[:2] / sha256[2:]

    def save(self, sha256: str, data: bytes) -> bool:
        """Writes the file unless it exists; True if this call created it."""
        target = self.path(sha256)
        if target.exists():
            return False
        _write_atomically(target, data)
        return True

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def thumbnail(self, sha256: str, size: int) -> tuple[bytes, str]:
        """The image scaled to fit in size x size (aspect kept), made once and then kept on disk.

        JPEG, or PNG when the image has transparency. The caller serves the original instead when
        it already fits.
        """
        if size not in THUMB_SIZES:
            raise ValueError(f"thumbnail size {size} is not one of {THUMB_SIZES}")
        original = self.path(sha256)
        for ext, content_type in (("jpg", "image/jpeg"), ("png", "image/png")):
            cached = original.with_name(f"{original.name}.t{size}.{ext}")
            if cached.exists():
                return cached.read_bytes(), content_type
        with _DECODING, Image.open(original, formats=FORMATS) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
            alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
            out = io.BytesIO()
            if alpha:
                img.convert("RGBA").save(out, "PNG", optimize=True)
                ext, content_type = "png", "image/png"
            else:
                img.convert("RGB").save(out, "JPEG", quality=85)
                ext, content_type = "jpg", "image/jpeg"
        data = out.getvalue()
        _write_atomically(original.with_name(f"{original.name}.t{size}.{ext}"), data)
        return data, content_type


def thumb_size(requested: int) -> int:
    """The largest allowed thumbnail size not over the one asked (the smallest if all are)."""
    fitting = [s for s in THUMB_SIZES if s <= requested]
    return fitting[-1] if fitting else THUMB_SIZES[0]


def _write_atomically(target: Path, data: bytes) -> None:
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
