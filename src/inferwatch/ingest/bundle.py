"""A Vision Event bundle, as Roboflow's "Write Vision Event Bundle" workflow block writes it: a
gzip-compressed (or plain) tar of `payload.json`, the event with `bundleFormatVersion: 1` and its
images naming tar members (`file`, `inputFile`), plus those members (`images/<uuid>.jpg`).

The archive comes from a device we do not control and is read in memory, never extracted to disk,
so hostile archives are refused before anything is kept: a path that climbs out (`..`, absolute),
a link or device, a member past its size, a decompression bomb, too many members, a duplicate
name, a missing or malformed payload. Each is a 400 naming what is wrong. Members under other
top-level folders are skipped unread (their names are still checked), as the format allows.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import msgspec

from inferwatch.errors import InvalidRequest
from inferwatch.ingest import limits
from inferwatch.ingest.vision_events import image_refs

MAX_BUNDLE_BYTES = 25 * 1024 * 1024  # as sent: the block refuses to write a bigger one -> 413
# Unpacked: a tar of JPEGs barely compresses, so four times the cap is only ever a bomb -> 400.
MAX_UNPACKED_BYTES = 4 * MAX_BUNDLE_BYTES
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
MAX_MEMBERS = 256
FORMAT_VERSION = 1
PAYLOAD = "payload.json"
IMAGES = "images"
IMAGE_FIELDS = {"file": "sourceId", "inputFile": "inputSourceId"}

_decode_payload = msgspec.json.Decoder(dict[str, Any])


@dataclass(frozen=True, slots=True)
class Bundle:
    """The payload as sent (`bundleFormatVersion` still in it) and the image members by name."""

    payload: dict[str, Any]
    files: dict[str, bytes]
    skipped: tuple[str, ...] = ()  # members neither the payload nor under images/: not read


def unpack(body: bytes) -> Bundle:
    """The bundle's payload and images, or a 400 saying why the archive is refused."""
    if not body:
        raise InvalidRequest("the body is empty; send the bundle's .tar.gz (or .tar) bytes as the body")
    data = _gunzip(body) if body[:2] == b"\x1f\x8b" else body
    payload: bytes | None = None
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    skipped: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for count, member in enumerate(archive, 1):
                if count > MAX_MEMBERS:
                    raise InvalidRequest(f"the archive holds more than {MAX_MEMBERS} members")
                name = _safe_name(member.name)
                if member.isdir():
                    continue
                if not member.isreg() or member.issparse():
                    raise InvalidRequest(f"member {member.name!r}: only regular files are read (no links, devices"
                                         " or sparse files)")
                if name in seen:
                    raise InvalidRequest(f"member {member.name!r}: appears twice")
                seen.add(name)
                if name == PAYLOAD:
                    payload = _read(archive, member, MAX_PAYLOAD_BYTES)
                elif name.split("/")[0] == IMAGES:
                    files[name] = _read(archive, member, limits.MAX_IMAGE_BYTES)
                else:
                    skipped.append(name)
    except tarfile.TarError as exc:
        raise InvalidRequest(f"not a tar archive (nor a gzip-compressed one), or a corrupt one: {exc}") from None
    if payload is None:
        raise InvalidRequest(f"the archive has no {PAYLOAD}")
    try:
        decoded = _decode_payload.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{PAYLOAD}: {exc}") from None
    version = decoded.get("bundleFormatVersion")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise InvalidRequest(f"{PAYLOAD}: bundleFormatVersion must be {FORMAT_VERSION}, got {version!r}")
    return Bundle(decoded, files, tuple(skipped))


def event_body(bundle: Bundle, use_case: str | None, source_ids: dict[str, str]) -> dict[str, Any]:
    """The payload as a Vision Event: its images naming the stored images' `source_ids` (by member
    name) instead of members, the use case from `use_case` when it has none."""
    event = {k: v for k, v in bundle.payload.items() if k != "bundleFormatVersion"}
    if event.get("useCaseId") is None:
        if use_case is None:
            raise InvalidRequest(f"{PAYLOAD}: no useCaseId; name the use case with ?useCaseId=")
        event["useCaseId"] = use_case
    found = event.get("images")
    if found is None:
        return event
    if not isinstance(found, list):
        raise InvalidRequest(f"{PAYLOAD}: images must be an array")

    def stored(path: str, member: Any) -> str:
        if not isinstance(member, str) or member not in source_ids:
            raise InvalidRequest(f"{path}: no image member {member!r} in the archive (images are members under"
                                 f" {IMAGES}/)")
        return source_ids[member]

    rewritten = []
    for index, image in enumerate(found):
        if not isinstance(image, dict):
            raise InvalidRequest(f"{PAYLOAD}: images[{index}] must be an object")
        rewritten.append(image_refs(image, IMAGE_FIELDS, f"{PAYLOAD}: images[{index}]", stored))
    event["images"] = rewritten
    return event


def warnings(bundle: Bundle, kept: list[str]) -> list[str]:
    """The members not kept (`kept`: those the payload names), each an ingestion warning."""
    out = [f"bundle: member {msgspec.json.encode(name[:200]).decode()} is not read (only {PAYLOAD} and {IMAGES}/ are)"
           for name in bundle.skipped]
    out += [f"bundle: member {msgspec.json.encode(name[:200]).decode()} is named by no image of the payload; not kept"
            for name in bundle.files if name not in kept]
    return out


def members_named(bundle: Bundle) -> list[str]:
    """The image members the payload names, in order, each once: those alone are kept."""
    found = bundle.payload.get("images")
    named = [image[f] for image in found if isinstance(image, dict) for f in IMAGE_FIELDS
             if isinstance(image.get(f), str)] if isinstance(found, list) else []
    return [m for m in dict.fromkeys(named) if m in bundle.files]


def _gunzip(body: bytes) -> bytes:
    """One gzip member, at most MAX_UNPACKED_BYTES: past that it is a bomb, not a bundle."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, MAX_UNPACKED_BYTES + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"the bundle is not valid gzip: {exc}") from None
    if len(out) > MAX_UNPACKED_BYTES:
        raise InvalidRequest(f"the bundle unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    if not inflater.eof:
        raise InvalidRequest("the gzip stream is truncated")
    return out


def _safe_name(name: str) -> str:
    """A member's path, normalised; one that could leave the bundle's folder is refused."""
    path = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name or path.is_absolute() or ".." in path.parts:
        raise InvalidRequest(f"member {name!r}: its path leaves the bundle (absolute, `..` or a backslash)")
    return "/".join(part for part in path.parts if part != ".")


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise InvalidRequest(f"member {member.name!r}: {member.size} bytes, over the limit of {limit}")
    handle = archive.extractfile(member)
    if handle is None:  # pragma: no cover - a regular file always has one
        raise InvalidRequest(f"member {member.name!r}: cannot be read")
    with handle:
        return handle.read()
