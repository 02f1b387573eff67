"""Alert rules of a workspace (CRUD), their state, and the history of their firings."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch.alerts import service
from inferwatch.alerts.evaluator import Evaluator
from inferwatch.alerts.rules import RULE_DECODER, Rule, keep_secrets, masked
from inferwatch.api.admin import scheduled
from inferwatch.api.common import JSON, body_schema, read_body, runtime, whole_number
from inferwatch.auth import Manager, Reader, admin
from inferwatch.errors import InvalidRequest, NotFound
from inferwatch.ingest.fields import decode
from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState
from inferwatch.store.rows import iso

router = APIRouter(prefix="/api/v1/{workspace}")
admin_router = APIRouter(prefix="/admin", include_in_schema=False)

DEFAULT_HISTORY = 100
MAX_HISTORY = 1000
_RULE_DOC = ("A metric over a rolling window, on a scope, against warning and critical thresholds, with the"
             " channels to notify and caps per hour and day.")


def describe(record: AlertRuleRecord, state: AlertState | None) -> dict[str, Any]:
    rule = RULE_DECODER.decode(record.spec)
    now = ({"state": state.state, "since": iso(state.since), "value": state.value,
            "evaluated_at": iso(state.evaluated_at)}
           if state else {"state": "ok", "since": None, "value": None, "evaluated_at": None})  # not evaluated yet
    return {"id": record.rule_id, "rule": msgspec.to_builtins(masked(rule)), **now,
            "created_at": iso(record.created_at), "updated_at": iso(record.updated_at)}


def _event(event: AlertEvent) -> dict[str, Any]:
    return {"rule_id": event.rule_id, "at": iso(event.at), "state": event.state, "previous": event.previous,
            "value": event.value, "notified": event.notified, **msgspec.json.decode(event.detail)}


def _record(request: Request, ws: int, rule_id: str) -> AlertRuleRecord:
    for record in runtime(request).store.alert_rules(ws):
        if record.rule_id == rule_id:
            return record
    raise NotFound("no such alert rule")


@router.get("/alerts", summary="The workspace's alert rules with their current state")
def list_rules(who: Reader, request: Request) -> JSON:
    store = runtime(request).store
    states = store.alert_states(who.ws.id)
    return JSON({"alerts": [describe(r, states.get(r.rule_id)) for r in store.alert_rules(who.ws.id)]})


@router.post("/alerts", summary="Create an alert rule", status_code=201,
             openapi_extra=body_schema(Rule, _RULE_DOC))
async def create_rule(who: Manager, request: Request) -> JSON:
    rule = decode(RULE_DECODER, await read_body(request))
    record = await service.create(runtime(request).writer, who, rule)
    return JSON(describe(record, None), status_code=201)


@router.get("/alerts/history", summary="Firings and recoveries, newest first (`rule_id=`, `limit=`)")
def history(who: Reader, request: Request) -> JSON:
    params = request.query_params
    unknown = set(params) - {"rule_id", "limit", "api_key"}
    if unknown:
        raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]!r}")
    limit = whole_number(params.get("limit"), "limit", DEFAULT_HISTORY, MAX_HISTORY)
    events = runtime(request).store.alert_events(who.ws.id, params.get("rule_id") or None, limit)
    return JSON({"events": [_event(e) for e in events]})


@router.get("/alerts/{rule_id}", summary="One alert rule with its state")
def get_rule(who: Reader, rule_id: str, request: Request) -> JSON:
    record = _record(request, who.ws.id, rule_id)
    return JSON(describe(record, runtime(request).store.alert_states(who.ws.id).get(rule_id)))


@router.put("/alerts/{rule_id}", summary="Replace an alert rule (its state is kept)",
            openapi_extra=body_schema(Rule, _RULE_DOC))
async def put_rule(who: Manager, rule_id: str, request: Request) -> JSON:
    rule = decode(RULE_DECODER, await read_body(request))
    old = _record(request, who.ws.id, rule_id)
    rule = keep_secrets(rule, RULE_DECODER.decode(old.spec))
    rt = runtime(request)
    record = await service.replace(rt.writer, who, old, rule)
    return JSON(describe(record, rt.store.alert_states(who.ws.id).get(rule_id)))


@router.delete("/alerts/{rule_id}", summary="Delete an alert rule (its history stays)")
async def delete_rule(who: Manager, rule_id: str, request: Request) -> JSON:
    if not await service.delete(runtime(request).writer, who, rule_id):
        raise NotFound("no such alert rule")
    return JSON({"status": "ok", "deleted": rule_id})


@admin_router.post("/alerts/evaluate", dependencies=[Depends(admin)])
async def evaluate_now(request: Request) -> JSON:
    """Evaluates every enabled rule now, due or not (operators, and tests that must not wait)."""
    evaluator: Evaluator = scheduled(runtime(request).schedule.evaluator)
    return JSON(await run_in_threadpool(evaluator.evaluate_now))
