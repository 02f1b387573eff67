"""Changing a workspace's alert rules: what the API's routes and the dashboard's forms both do.

Each change goes through the writer with its line of the audit trail, in the same call, so a
rule never changes without the trail saying who changed it.
"""

from __future__ import annotations

import uuid

import msgspec
from starlette.concurrency import run_in_threadpool

from inferwatch.alerts.rules import Rule
from inferwatch.errors import InvalidRequest
from inferwatch.ingest.writer import Writer
from inferwatch.store.base import AlertRuleRecord, Store
from inferwatch.store.rows import now_utc
from inferwatch.workspaces import Principal, audit

MAX_RULES = 200


async def create(writer: Writer, who: Principal, rule: Rule) -> AlertRuleRecord:
    """Stores a new rule (at most MAX_RULES a workspace)."""
    now = now_utc()
    ws = who.ws.id
    record = AlertRuleRecord(ws, uuid.uuid4().hex[:12], msgspec.json.encode(rule).decode(), now, now)

    def put(store: Store) -> None:
        if len(store.alert_rules(ws)) >= MAX_RULES:
            raise InvalidRequest(f"a workspace keeps at most {MAX_RULES} alert rules")
        store.put_alert_rule(record)
        audit(store, ws, who.key.name, "alert_rule.created", record.rule_id, name=rule.name)

    await run_in_threadpool(writer.call, put)
    return record


async def replace(writer: Writer, who: Principal, old: AlertRuleRecord, rule: Rule) -> AlertRuleRecord:
    """Replaces a rule's definition; its state and history stay."""
    record = AlertRuleRecord(old.ws, old.rule_id, msgspec.json.encode(rule).decode(), old.created_at, now_utc())

    def put(store: Store) -> None:
        store.put_alert_rule(record)
        audit(store, old.ws, who.key.name, "alert_rule.replaced", old.rule_id, name=rule.name)

    await run_in_threadpool(writer.call, put)
    return record


async def delete(writer: Writer, who: Principal, rule_id: str) -> bool:
    """Deletes a rule (its history stays); False if the workspace has none of this id."""
    ws = who.ws.id

    def drop(store: Store) -> bool:
        deleted = store.delete_alert_rule(ws, rule_id)
        if deleted:
            audit(store, ws, who.key.name, "alert_rule.deleted", rule_id)
        return deleted

    deleted: bool = await run_in_threadpool(writer.call, drop)
    return deleted
