"""Uploaded images: what is accepted (validated with Pillow, before anything is kept) and how
thumbnails are made. Where the bytes are kept is `image_store`'s job."""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from dataclasses import dataclass

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
THUMB_FORMATS = (("jpg", "image/jpeg"), ("png", "image/png"))
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


def inspect_part(where: str, data: bytes) -> Checked:
    """`inspect` for one of a request's several images: a refusal names which one (`where`)."""
    try:
        return inspect(data)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.detail}") from None


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def make_thumbnail(data: bytes, size: int) -> tuple[bytes, str, str]:
    """The image scaled to fit in size x size (aspect kept): (bytes, extension, content type).

    JPEG, or PNG when the image has transparency.
    """
    with _DECODING, Image.open(io.BytesIO(data), formats=FORMATS) as img:
        img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
        out = io.BytesIO()
        if alpha:
            img.convert("RGBA").save(out, "PNG", optimize=True)
            return out.getvalue(), "png", "image/png"
        img.convert("RGB").save(out, "JPEG", quality=85)
        return out.getvalue(), "jpg", "image/jpeg"


def thumb_size(requested: int) -> int:
    """The largest allowed thumbnail size not over the one asked (the smallest if all are)."""
    fitting = [s for s in THUMB_SIZES if s <= requested]
    return fitting[-1] if fitting else THUMB_SIZES[0]
