"""Alert rules of a workspace (CRUD), their state, and the history of their firings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from inferwatch.alerts.evaluator import Evaluator
from inferwatch.alerts.rules import RULE_DECODER, Rule, keep_secrets, masked
from inferwatch.api.admin import scheduled
from inferwatch.api.common import JSON, Runtime, authorize, body_schema, read_body, runtime, whole_number
from inferwatch.errors import InvalidRequest, NotFound
from inferwatch.ingest.fields import decode
from inferwatch.store.base import AlertEvent, AlertRuleRecord, AlertState

router = APIRouter(prefix="/api/v1/{workspace}")
admin_router = APIRouter(prefix="/admin", include_in_schema=False)

MAX_RULES = 200
DEFAULT_HISTORY = 100
MAX_HISTORY = 1000
_RULE_DOC = ("A metric over a rolling window, on a scope, against warning and critical thresholds, with the"
             " channels to notify and caps per hour and day.")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=None).isoformat() + "Z"


def describe(record: AlertRuleRecord, state: AlertState | None) -> dict[str, Any]:
    rule = RULE_DECODER.decode(record.spec)
    return {
        "id": record.rule_id,
        "rule": msgspec.to_builtins(masked(rule)),
        "state": state.state if state else "ok",
        "since": _iso(state.since) if state else None,
        "value": state.value if state else None,
        "evaluated_at": _iso(state.evaluated_at) if state else None,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }


def _event(event: AlertEvent) -> dict[str, Any]:
    return {"rule_id": event.rule_id, "at": _iso(event.at), "state": event.state, "previous": event.previous,
            "value": event.value, "notified": event.notified, **msgspec.json.decode(event.detail)}


def _record(request: Request, ws: int, rule_id: str) -> AlertRuleRecord:
    for record in runtime(request).store.alert_rules(ws):
        if record.rule_id == rule_id:
            return record
    raise NotFound("no such alert rule")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@router.get("/alerts", summary="The workspace's alert rules with their current state")
def list_rules(workspace: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    store = runtime(request).store
    states = store.alert_states(ws.id)
    return JSON({"alerts": [describe(r, states.get(r.rule_id)) for r in store.alert_rules(ws.id)]})


@router.post("/alerts", summary="Create an alert rule", status_code=201,
             openapi_extra=body_schema(Rule, _RULE_DOC))
async def create_rule(workspace: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    rule = decode(RULE_DECODER, await read_body(request))
    record = await create(runtime(request), ws.id, rule)
    return JSON(describe(record, None), status_code=201)


async def create(rt: Runtime, ws: int, rule: Rule) -> AlertRuleRecord:
    """Stores a new rule (the API's POST and the dashboard's form)."""
    now = _now()
    record = AlertRuleRecord(ws, uuid.uuid4().hex[:12], msgspec.json.encode(rule).decode(), now, now)

    def put(store: Any) -> None:
        if len(store.alert_rules(ws)) >= MAX_RULES:
            raise InvalidRequest(f"a workspace keeps at most {MAX_RULES} alert rules")
        store.put_alert_rule(record)

    await run_in_threadpool(rt.writer.call, put)
    return record


async def delete(rt: Runtime, ws: int, rule_id: str) -> bool:
    """Deletes a rule (its history stays); False if the workspace has none of this id."""
    deleted: bool = await run_in_threadpool(rt.writer.call, lambda s: s.delete_alert_rule(ws, rule_id))
    return deleted


@router.get("/alerts/history", summary="Firings and recoveries, newest first (`rule_id=`, `limit=`)")
def history(workspace: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    params = request.query_params
    unknown = set(params) - {"rule_id", "limit", "api_key"}
    if unknown:
        raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]!r}")
    limit = whole_number(params.get("limit"), "limit", DEFAULT_HISTORY, MAX_HISTORY)
    events = runtime(request).store.alert_events(ws.id, params.get("rule_id") or None, limit)
    return JSON({"events": [_event(e) for e in events]})


@router.get("/alerts/{rule_id}", summary="One alert rule with its state")
def get_rule(workspace: str, rule_id: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    record = _record(request, ws.id, rule_id)
    return JSON(describe(record, runtime(request).store.alert_states(ws.id).get(rule_id)))


@router.put("/alerts/{rule_id}", summary="Replace an alert rule (its state is kept)",
            openapi_extra=body_schema(Rule, _RULE_DOC))
async def put_rule(workspace: str, rule_id: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    rule = decode(RULE_DECODER, await read_body(request))
    old = _record(request, ws.id, rule_id)
    rule = keep_secrets(rule, RULE_DECODER.decode(old.spec))
    record = AlertRuleRecord(ws.id, rule_id, msgspec.json.encode(rule).decode(), old.created_at, _now())
    rt = runtime(request)
    await run_in_threadpool(rt.writer.call, lambda s: s.put_alert_rule(record))
    return JSON(describe(record, rt.store.alert_states(ws.id).get(rule_id)))


@router.delete("/alerts/{rule_id}", summary="Delete an alert rule (its history stays)")
async def delete_rule(workspace: str, rule_id: str, request: Request) -> JSON:
    ws = authorize(request, workspace)
    if not await delete(runtime(request), ws.id, rule_id):
        raise NotFound("no such alert rule")
    return JSON({"status": "ok", "deleted": rule_id})


@admin_router.post("/alerts/evaluate")
async def evaluate_now(request: Request) -> JSON:
    """Evaluates every enabled rule now, due or not (operators, and tests that must not wait)."""
    evaluator: Evaluator = scheduled(request, runtime(request).schedule.evaluator)
    return JSON(await run_in_threadpool(evaluator.evaluate_now))
