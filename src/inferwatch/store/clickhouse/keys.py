"""API keys and the audit trail on ClickHouse (migration 7): the twin of `store/duckdb/keys.py`.

A key is a ReplacingMergeTree row read with FINAL (a revocation is a newer row saying so). Last
use lives in its own table, folded to the latest time, so noting a use never rewrites the key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inferwatch.store.base import ApiKeyRecord, AuditRecord
from inferwatch.store.clickhouse.healing import GuardedClient
from inferwatch.store.clickhouse.sql import Params
from inferwatch.store.rows import naive_utc, now_utc

_KEY_COLUMNS = ["ws", "key_id", "name", "key_hash", "scopes", "created_at", "expires_at", "revoked_at",
                "expiry_noted", "updated_at"]


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else naive_utc(value)


class KeyStore:
    """Needs the host's `_rows()` and `_client()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _client(self) -> GuardedClient:
        raise NotImplementedError

    def api_keys(self, ws: int | None) -> list[ApiKeyRecord]:
        p = Params()
        where = f"WHERE k.ws = {p.add(ws, 'Int32')}" if ws is not None else ""
        rows = self._rows(
            "SELECT k.ws, k.key_id, k.name, k.key_hash, k.scopes, k.created_at, k.expires_at, k.revoked_at,"
            " u.last_used_at, k.expiry_noted FROM api_keys AS k FINAL"
            " LEFT JOIN (SELECT ws, key_id, max(last_used_at) AS last_used_at FROM api_key_use GROUP BY ws, key_id)"
            " AS u ON u.ws = k.ws AND u.key_id = k.key_id"
            f" {where} ORDER BY k.ws, k.created_at, k.key_id SETTINGS join_use_nulls = 1", p)
        return [ApiKeyRecord(int(ws_), str(key_id), str(name), str(key_hash), tuple(scopes), naive_utc(created),
                             _naive(expires), _naive(revoked), _naive(used), bool(noted))
                for ws_, key_id, name, key_hash, scopes, created, expires, revoked, used, noted in rows]

    def put_api_key(self, record: ApiKeyRecord) -> None:
        self._client().insert(
            "api_keys", [[record.ws, record.key_id, record.name, record.key_hash, list(record.scopes),
                          record.created_at, record.expires_at, record.revoked_at, int(record.expiry_noted),
                          max(now_utc(), record.created_at)]],
            column_names=_KEY_COLUMNS)

    def note_key_use(self, used: dict[tuple[int, str], datetime]) -> None:
        if used:
            self._client().insert("api_key_use", [[ws, key_id, at] for (ws, key_id), at in used.items()],
                                  column_names=["ws", "key_id", "last_used_at"])

    def add_audit(self, record: AuditRecord) -> None:
        self._client().insert(
            "audit_log", [[record.ws, record.at, record.actor, record.action, record.target, record.detail]],
            column_names=["ws", "recorded_at", "actor", "action", "target", "detail"])

    def audit(self, ws: int, limit: int) -> list[AuditRecord]:
        p = Params()
        rows = self._rows(
            f"SELECT ws, recorded_at, actor, action, target, detail FROM audit_log WHERE ws = {p.add(ws, 'Int32')}"
            f" ORDER BY recorded_at DESC LIMIT {p.add(limit, 'UInt32')}", p)
        return [AuditRecord(int(w), naive_utc(at), a, act, t, d) for w, at, a, act, t, d in rows]
