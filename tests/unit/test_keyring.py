"""A server on a shared store (ClickHouse, written by several replicas) sees workspaces made and
keys rotated by the others: its key ring reads them again every few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

from inferwatch import workspaces
from inferwatch.store import open_store
from inferwatch.workspaces import KeyRing


def _eventually(check: Callable[[], bool], within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_replica_sees_a_workspace_and_a_rotation_made_through_another(chdb_url: Callable[[str], str]) -> None:
    url = chdb_url("keyring")
    here, there = open_store(url), open_store(url)  # two servers' stores, one database
    try:
        here.migrate()
        ring = KeyRing(here, refresh_s=0.05)
        assert ring.by_slug("plant-2") is None
        record, key = workspaces.create(there, "plant-2")
        assert _eventually(lambda: ring.by_key(key) == record)
        _, new_key = workspaces.rotate(there, "plant-2")
        assert _eventually(lambda: ring.by_key(key) is None)
        found = ring.by_key(new_key)
        assert found is not None and found.slug == "plant-2"
    finally:
        here.close()
        there.close()
