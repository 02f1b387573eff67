"""The edge event store's event (`POST /v2/events`, Roboflow's local Event Ingestion Service, as
the "Roboflow Vision Events" workflow block sends it with `write_to_event_store`), mapped onto a
Vision Event (docs/vision-events.md), so it goes through the same checks and the same rows.

The outer keys are snake_case (`inference_timestamp`, `solution`, `event_schema`, `event_data`,
`custom_metadata`), the images carry their bytes as base64 (`base64Image`, `inputBase64Image`)
instead of upload ids, and the client names no event id: inferwatch gives each event a new one.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from inferwatch.errors import ApiError, InvalidRequest
from inferwatch.ingest import limits
from inferwatch.ingest.vision_events import MAX_IMAGES, image_refs
from inferwatch.ingest.warnings import strict_twin, unknown_fields

IMAGE_FIELDS = {"base64Image": "sourceId", "inputBase64Image": "inputSourceId"}
# The Vision Event's names, as a refusal of the mapped event would name them, and the client's.
_NAMES = {"eventType": "event_schema", "useCaseId": "solution", "timestamp": "inference_timestamp",
          "eventData": "event_data", "customMetadata": "custom_metadata"}
_NAMED = re.compile(r"(?<![A-Za-z_])(" + "|".join(_NAMES) + r")(?![A-Za-z_])")
_MAX_BASE64 = (limits.MAX_IMAGE_BYTES + 2) // 3 * 4


class EdgeEvent(msgspec.Struct):
    """Unknown keys are ignored, each an ingestion warning of the event, as on the camelCase route."""

    inference_timestamp: str
    solution: str
    event_schema: str
    event_data: dict[str, Any] | None = None
    images: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=MAX_IMAGES)] = []
    custom_metadata: dict[str, Any] | None = None
    displayImagePosition: Annotated[int, msgspec.Meta(ge=0, le=MAX_IMAGES)] | None = None


_decode = msgspec.json.Decoder(EdgeEvent)
_decode_strict = msgspec.json.Decoder(strict_twin(EdgeEvent))  # tried first, as `vision_events.decode_one`


@dataclass(frozen=True, slots=True)
class Mapped:
    """The Vision Event (its images naming placeholders, `images[0].base64Image`, until the
    bytes are checked) and the decoded bytes of each placeholder."""

    event: dict[str, Any]
    blobs: dict[str, bytes]
    unknown: tuple[str, ...] = ()  # outer keys the mapping leaves out, as the client named them


def decode(body: bytes) -> Mapped:
    """The edge event as a Vision Event with a fresh id; a 400 naming the client's field."""
    unknown: list[str] = []
    try:
        edge = _decode_strict.decode(body)
    except msgspec.DecodeError as exc:
        if not str(exc).startswith("Object contains unknown field"):
            raise InvalidRequest(str(exc)) from None
        try:
            edge = _decode.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidRequest(str(exc)) from None
        unknown = unknown_fields(msgspec.json.decode(body), EdgeEvent)
    blobs: dict[str, bytes] = {}

    def placeholder(path: str, value: Any) -> str:
        blobs[path] = _bytes(value, path)
        return path

    images = [image_refs(image, IMAGE_FIELDS, f"images[{index}]", placeholder)
              for index, image in enumerate(edge.images)]
    event: dict[str, Any] = {"eventId": str(uuid.uuid4()), "eventType": edge.event_schema,
                             "useCaseId": edge.solution, "timestamp": edge.inference_timestamp, "images": images}
    if edge.event_data:
        event["eventData"] = edge.event_data
    if edge.custom_metadata:
        event["customMetadata"] = edge.custom_metadata
    if edge.displayImagePosition is not None:
        event["displayImagePosition"] = edge.displayImagePosition
    return Mapped(event, blobs, tuple(f"{path}: unknown field, ignored" for path in unknown))


def with_source_ids(mapped: Mapped, source_ids: dict[str, str]) -> dict[str, Any]:
    """The event with each placeholder replaced by its image's id (`source_ids`)."""
    images = [{k: source_ids.get(v, v) if k in IMAGE_FIELDS.values() else v for k, v in image.items()}
              for image in mapped.event["images"]]
    return {**mapped.event, "images": images}


def renamed(exc: ApiError) -> ApiError:
    """A refusal of the mapped event, naming the client's fields rather than the Vision Event's."""
    if isinstance(exc.detail, str):
        exc.detail = renamed_text(exc.detail)
    return exc


def renamed_text(text: str) -> str:
    """A refusal's or a warning's text naming the client's fields (`event_data.result`)."""
    return _NAMED.sub(lambda m: _NAMES[m.group(1)], text)


def _bytes(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}: must be a base64 string")
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    if len(text) > _MAX_BASE64:
        raise InvalidRequest(f"{where}: the image is over {limits.MAX_IMAGE_BYTES} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}: not valid base64") from None
