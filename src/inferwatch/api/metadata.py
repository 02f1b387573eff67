"""The metadata fields a workspace uses, for filter pickers and group-by choices."""

from __future__ import annotations

from fastapi import APIRouter, Request

from inferwatch.api.common import JSON, runtime
from inferwatch.auth import Reader
from inferwatch.errors import InvalidRequest

router = APIRouter(prefix="/api/v1/{workspace}")


@router.get("/metadata/fields", summary="Metadata field names with distinct value counts and top values")
def fields(who: Reader, request: Request) -> JSON:
    top_text = request.query_params.get("top", "10")
    # isdigit() alone admits characters int() refuses, such as "²".
    top = int(top_text) if top_text.isascii() and top_text.isdigit() else -1
    if not 0 <= top <= 1000:
        raise InvalidRequest("top must be a whole number from 0 to 1000")
    return JSON({"fields": runtime(request).store.metadata_fields(who.ws.id, top)})
