"""API keys and the audit trail on DuckDB (migration 10)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from inferwatch.store.base import ApiKeyRecord, AuditRecord

_KEY_COLUMNS = ("ws, key_id, name, key_hash, scopes, created_at, expires_at, revoked_at, last_used_at,"
                " expiry_noted")


def _key(row: tuple[object, ...]) -> ApiKeyRecord:
    ws, key_id, name, key_hash, scopes, created, expires, revoked, used, noted = row
    return ApiKeyRecord(int(ws), str(key_id), str(name), str(key_hash), tuple(scopes),  # type: ignore[call-overload,arg-type]
                        created, expires, revoked, used, bool(noted))  # type: ignore[arg-type]


class KeyStore:
    """Needs the host's `_cursor()`."""

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def api_keys(self, ws: int | None) -> list[ApiKeyRecord]:
        where, params = ("WHERE ws = ?", [ws]) if ws is not None else ("", [])
        rows = self._cursor().execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys {where} ORDER BY ws, created_at, key_id", params).fetchall()
        return [_key(row) for row in rows]

    def put_api_key(self, record: ApiKeyRecord) -> None:
        self._cursor().execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (ws, key_id) DO UPDATE"
            " SET name = excluded.name, key_hash = excluded.key_hash, scopes = excluded.scopes,"
            " expires_at = excluded.expires_at, revoked_at = excluded.revoked_at,"
            " expiry_noted = excluded.expiry_noted",
            [record.ws, record.key_id, record.name, record.key_hash, list(record.scopes), record.created_at,
             record.expires_at, record.revoked_at, record.expiry_noted])

    def note_key_use(self, used: dict[tuple[int, str], datetime]) -> None:
        if not used:
            return
        self._cursor().executemany(
            "UPDATE api_keys SET last_used_at = greatest(coalesce(last_used_at, ?::TIMESTAMP), ?::TIMESTAMP)"
            " WHERE ws = ? AND key_id = ?",
            [[at, at, ws, key_id] for (ws, key_id), at in used.items()])

    def add_audit(self, record: AuditRecord) -> None:
        self._cursor().execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?)",
                               [record.ws, record.at, record.actor, record.action, record.target, record.detail])

    def audit(self, ws: int, limit: int) -> list[AuditRecord]:
        rows = self._cursor().execute(
            "SELECT ws, recorded_at, actor, action, target, detail FROM audit_log WHERE ws = ?"
            " ORDER BY recorded_at DESC LIMIT ?", [ws, limit]).fetchall()
        return [AuditRecord(*row) for row in rows]
