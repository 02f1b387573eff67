"""Measured performance from ground truth attached as metadata: each model's setting (which
metadata field holds the expected label, how its values map to classes, the pass/fail field) and
the figures computed from it at query time."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch.api.common import JSON, body_schema, read_body, runtime, whole_number
from inferwatch.auth import Manager, Reader, Window, window
from inferwatch.errors import InvalidRequest
from inferwatch.ingest import limits
from inferwatch.ingest.fields import decode
from inferwatch.query.buckets import choose_bucket
from inferwatch.query.filters import meta_field
from inferwatch.query.performance import DEFAULT_BINS, FEEDBACK_FIELD, GroundTruth, report
from inferwatch.store.base import Store
from inferwatch.store.rows import iso
from inferwatch.workspaces import audit

router = APIRouter(prefix="/api/v1/{workspace}")

_SETTING = msgspec.json.Decoder(GroundTruth)
SETTING_KEYS = ("label_field", "no_detection_label", "confidence_threshold", "pass_field", "fail_value",
                "label_map")  # the setting, given in the query string over the stored one
MAX_BINS = 100


def _model(request: Request) -> str:
    model_id = request.query_params.get("model_id")
    if not model_id:
        raise InvalidRequest("model_id is required")
    if len(model_id) > limits.MAX_MODEL_ID_LEN or "\0" in model_id:
        raise InvalidRequest(f"model_id: at most {limits.MAX_MODEL_ID_LEN} characters, no NUL")
    return model_id


@router.get("/ground-truth", summary="A model's ground-truth setting (`?model_id=`); `setting` null if none")
def get_setting(who: Reader, request: Request) -> JSON:
    # null rather than 404: a model without a setting is a normal state, and the dashboard asks.
    model_id = _model(request)
    return JSON({"model_id": model_id, "setting": runtime(request).store.ground_truth(who.ws.id, model_id)})


@router.put(
    "/ground-truth",
    summary="Set a model's ground-truth setting (`?model_id=`)",
    openapi_extra=body_schema(GroundTruth, "Which metadata field holds the expected label, and how to read it."),
)
async def put_setting(who: Manager, request: Request) -> JSON:
    model_id = _model(request)
    setting = decode(_SETTING, await read_body(request))
    def put(store: Store) -> None:
        store.set_ground_truth(who.ws.id, model_id, setting)
        audit(store, who.ws.id, who.key.name, "ground_truth.set", model_id, setting=msgspec.to_builtins(setting))

    await run_in_threadpool(runtime(request).writer.call, put)
    return JSON({"model_id": model_id, "setting": setting})


@router.get("/performance", summary="Accuracy, confusion matrix and per-class figures from ground truth")
def performance(who: Reader, win: Annotated[Window, Depends(window("bucket", "by", "bins", besides=SETTING_KEYS))],
                request: Request) -> JSON:
    """`model_id` is required; `label_field` (and the other setting fields) default to the
    model's setting; any filter of the inference list narrows the inferences counted."""
    params = request.query_params
    if len(win.filters.model_ids) != 1:
        raise InvalidRequest("name exactly one model_id: performance is a model's")
    store = runtime(request).store
    stored = store.ground_truth(who.ws.id, win.filters.model_ids[0])
    setting = _setting(request, stored)
    by = params.get("by") or None
    field = None if by is None else meta_field(by)
    if by is not None and field is None:
        raise InvalidRequest("by must be meta.<field>")
    bins = whole_number(params.get("bins"), "bins", DEFAULT_BINS, MAX_BINS)
    bucket_name, bucket = choose_bucket(params.get("bucket"), win.end - win.start)
    counts = store.performance_counts(who.ws.id, win.filters, setting, bucket,
                                      field, bins)
    answer = report(counts, setting, bins)
    answer.update(model_id=win.filters.model_ids[0], bucket=bucket_name, by=by,
                  **{"from": iso(win.start), "to": iso(win.end)})
    return JSON(answer)


def _setting(request: Request, stored: GroundTruth | None) -> GroundTruth:
    """The stored setting with any field given in the query string put over it. Without a label
    field anywhere the model is measured by its operator feedback (`ve.feedback`): a verdict needs
    no setting to say whether the model was right."""
    params = request.query_params
    base = {} if stored is None else {f: getattr(stored, f) for f in GroundTruth.__struct_fields__}
    for key in ("label_field", "no_detection_label", "pass_field"):
        if params.get(key):
            base[key] = params[key]
    if params.get("confidence_threshold"):
        try:
            base["confidence_threshold"] = float(params["confidence_threshold"])
        except ValueError:
            raise InvalidRequest("confidence_threshold must be a number") from None
    if params.getlist("fail_value"):
        base["fail_values"] = params.getlist("fail_value")
    if "label_field" not in base:
        base["label_field"] = FEEDBACK_FIELD
    return decode(_SETTING, msgspec.json.encode(base))
