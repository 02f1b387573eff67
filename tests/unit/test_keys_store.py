"""API keys and the audit trail on both stores: the upgrade that turns a workspace's one key into
its key `default` with every scope, revocation, expiry, last use and the audit, asked of DuckDB
and chdb alike."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inferwatch import workspaces
from inferwatch.store import open_store
from inferwatch.store.base import Store
from inferwatch.store.clickhouse import ClickHouseStore
from inferwatch.store.clickhouse import schema as ch_schema
from inferwatch.store.clickhouse.importer import copy_store, open_source
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.duckdb import schema as duck_schema
from inferwatch.workspaces import CLI_ACTOR, SCOPES, KeyRing

OLD_KEY = "the-one-key-of-before"


# The migrations that made named keys (later ones must not be left out here).
DUCK_KEYS, CH_KEYS = 10, 7


def _before_keys(store: Store) -> None:
    """The schema as it was before named keys, and one workspace with its single key."""
    if isinstance(store, DuckDBStore):
        con = store._cursor()
        con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
        for version, ddl in enumerate(duck_schema.MIGRATIONS[:DUCK_KEYS - 1], 1):
            con.execute(ddl)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
    else:
        assert isinstance(store, ClickHouseStore)
        client = store._client()
        client.command(ch_schema.SCHEMA_VERSION_TABLE)
        for version, statements in enumerate(ch_schema.MIGRATIONS[:CH_KEYS - 1], 1):
            for statement in statements:
                client.command(statement.replace("{db}", store._database).replace("{auth}", ""))
            client.insert("schema_version", [[version, datetime.now(UTC)]], column_names=["version", "applied_at"])
    store.create_workspace("plant", hashlib.sha256(OLD_KEY.encode()).hexdigest())


@pytest.fixture(params=["duckdb", "chdb"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path,
              chdb_url: Callable[[str], str]) -> Iterator[Store]:
    url = f"duckdb:///{tmp_path}/store.duckdb" if request.param == "duckdb" else chdb_url("keys")
    store = open_store(url)
    _before_keys(store)
    yield store
    store.close()


def test_the_upgrade_keeps_the_one_key_with_every_scope(old_store: Store) -> None:
    old_store.migrate()
    (record,) = old_store.api_keys(None)
    assert (record.name, record.scopes, record.revoked_at, record.expires_at) == ("default", SCOPES, None, None)
    who = KeyRing(old_store).principal(OLD_KEY)
    assert who is not None and who.ws.slug == "plant"
    assert all(who.can(scope) for scope in SCOPES)
    old_store.migrate()  # again: nothing changes
    assert old_store.api_keys(None) == [record]


def test_keys_revocation_expiry_last_use_and_the_audit(old_store: Store) -> None:
    old_store.migrate()
    ws = old_store.workspaces()[0].id
    made, key = workspaces.add_key(old_store, ws, "camera-1", ["ingest"], None, "default")
    ring = KeyRing(old_store)
    who = ring.principal(key)
    assert who is not None and who.key.scopes == ("ingest",) and not who.can("read")

    ring.note_use(who)
    assert [k.last_used_at for k in old_store.api_keys(ws) if k.name == "camera-1"] == [None]
    assert next(k for k in ring.keys(ws) if k.name == "camera-1").last_used_at is not None
    ring.flush(old_store)
    stored = next(k for k in old_store.api_keys(ws) if k.name == "camera-1")
    assert stored.last_used_at is not None

    soon = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    workspaces.set_expiry(old_store, ws, "camera-1", soon, CLI_ACTOR)
    ring.reload()
    assert ring.principal(key) is None and ring.lookup(key) is not None
    ring.flush(old_store)
    ring.flush(old_store)  # the expiry is noted once
    revoked = workspaces.revoke_key(old_store, ws, made.key_id, CLI_ACTOR)
    assert revoked.revoked_at is not None and revoked.last_used_at is not None  # a revocation keeps it
    ring.reload()
    assert ring.principal(key) is None and ring.principal(OLD_KEY) is not None

    trail = [(r.actor, r.action, r.target) for r in reversed(old_store.audit(ws, 100))]
    assert trail == [("default", "key.created", "camera-1"), ("cli", "key.expiry_set", "camera-1"),
                     ("system", "key.expired", "camera-1"), ("cli", "key.revoked", "camera-1")]
    assert old_store.audit(ws, 1)[0].action == "key.revoked"


def test_rotation_replaces_only_the_default_key(old_store: Store) -> None:
    old_store.migrate()
    ws = old_store.workspaces()[0].id
    _, device_key = workspaces.add_key(old_store, ws, "edge", ["ingest"], None, CLI_ACTOR)
    _, new_key = workspaces.rotate(old_store, "plant")
    ring = KeyRing(old_store)
    assert ring.principal(OLD_KEY) is None
    assert ring.by_key(new_key) is not None and ring.by_key(device_key) is not None
    active = sorted((k.name, k.scopes) for k in old_store.api_keys(ws) if k.revoked_at is None)
    assert active == [("default", SCOPES), ("edge", ("ingest",))]


def test_migrate_to_clickhouse_takes_the_keys_and_the_audit(tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    path = tmp_path / "store.duckdb"
    duck = DuckDBStore(str(path))
    duck.migrate()
    ws, first = workspaces.create(duck, "plant")
    _, device = workspaces.add_key(duck, ws.id, "camera", ["ingest"], None, CLI_ACTOR)
    _, gone = workspaces.add_key(duck, ws.id, "old", ["read"], None, CLI_ACTOR)
    workspaces.revoke_key(duck, ws.id, "old", CLI_ACTOR)
    duck.note_key_use({(ws.id, duck.api_keys(ws.id)[1].key_id): datetime(2026, 5, 1)})
    before, trail = duck.api_keys(None), duck.audit(ws.id, 100)
    duck.close()
    target = open_store(chdb_url("import"))
    try:
        assert isinstance(target, ClickHouseStore)
        for _ in range(2):  # a second run (a resumed copy) adds nothing
            copy_store(open_source(str(path)), str(path), target)
        assert target.api_keys(None) == before
        assert [(r.actor, r.action, r.target) for r in target.audit(ws.id, 100)] == \
            [(r.actor, r.action, r.target) for r in trail]
        ring = KeyRing(target)
        assert ring.by_key(first) is not None and ring.by_key(device) is not None and ring.by_key(gone) is None
    finally:
        target.close()
