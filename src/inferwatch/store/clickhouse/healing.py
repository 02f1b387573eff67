"""Healing the in-process engine (chdb) after a full disk left a table with a broken part.

Why. ClickHouse's engine as chdb 4.4 runs it (ClickHouse 26.9) can commit a merged part none of
whose files were written: a merge's last step writes every file of the new part (a small part is
held in memory until then), and when the disk fills at that moment each write fails with ENOSPC,
yet the part becomes active with all its files empty. Reads of its table then fail with
`CORRUPTED_DATA` ("Empty marks file"). The parts the merge read are still on disk, outdated.
Loading the table again, as a restart does, detaches the broken part
(`detached/broken-on-start_<name>`) and makes those parts active again, so nothing acknowledged
is lost. An insert meeting the disk filling can leave its part broken the same way; seen only
for inserts into `inferences` that then failed in their view (`identity_keys_mv`, out of space),
so never acknowledged, and the reload drops rows that were never stored whole. The store reloads a table
(DETACH TABLE, ATTACH TABLE) when a statement meets a broken part of it, then runs the statement
again; and it reloads every table when the writer reopens it after a storage failure, so a
broken part nobody has read yet is dealt with while the parts it merged are still kept.

Every statement holds a `Gate` shared and a reload holds it exclusively, so no statement meets a
table while it is detached.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

log = logging.getLogger(__name__)

# How long a part a merge has replaced stays on disk: ClickHouse's own default, which chdb sets to
# 0 (its cleanup then removes such parts within about 40 s). A merged part found broken is healed
# from the parts it replaced only while they are kept.
KEEP_MERGED_PARTS_S = 480

# ClickHouse's names of the errors a part whose files are damaged gives when it is read.
_BROKEN_PART = ("CORRUPTED_DATA", "CHECKSUM_DOESNT_MATCH", "CANNOT_READ_ALL_DATA")
# "... (while reading from part /path/ in table db.name (uuid) located on disk ...)"
_PART_OF_TABLE = re.compile(r"from part \S+ in table `?(\w+)`?\.`?(\w+)`? \(")


def broken_table(exc: BaseException, database: str) -> str | None:
    """The table of `database` whose part `exc` says is damaged, or None."""
    if not isinstance(exc, DatabaseError):
        return None
    text = str(exc)
    if not any(f"({code})" in text for code in _BROKEN_PART):
        return None
    found = _PART_OF_TABLE.search(text)
    return found.group(2) if found and found.group(1) == database else None


def merge_tree_tables(client: Client) -> list[str]:
    """The store database's tables that keep parts (views, dictionaries and Null tables do not)."""
    rows = client.query("SELECT name FROM system.tables WHERE database = currentDatabase()"
                        " AND engine LIKE '%MergeTree' ORDER BY name").result_rows
    return [name for (name,) in rows]


def keep_merged_parts(client: Client) -> None:
    """Has every table keep the parts a merge replaced for `KEEP_MERGED_PARTS_S`, so that a merged
    part the disk broke can be replaced by them (a setting of the table, changed where it is not
    set yet; the TTL tables' dictionary lookups need the suspicious-TTL flag for any ALTER)."""
    rows = client.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
                        " AND engine LIKE '%MergeTree'").result_rows
    for name, engine_full in rows:
        if f"old_parts_lifetime = {KEEP_MERGED_PARTS_S}" not in engine_full:
            client.command(f"ALTER TABLE {name} MODIFY SETTING old_parts_lifetime = {KEEP_MERGED_PARTS_S}"
                           " SETTINGS allow_suspicious_ttl_expressions = 1")


def reload_tables(client: Client, tables: Iterable[str], unattached: set[str]) -> None:
    """DETACH and ATTACH each table (with the gate held exclusively): loading a table detaches its
    broken parts (`broken-on-start_...`) and makes the parts they had merged active again. A table
    detached but not attached again is kept in `unattached`, for the next reload to attach."""

    def broken(table: str) -> set[str]:
        return {name for (name,) in client.query(
            "SELECT name FROM system.detached_parts WHERE database = currentDatabase()"
            " AND table = {table:String} AND reason = 'broken-on-start'", parameters={"table": table}).result_rows}

    for table in tables:
        before = broken(table)
        if table not in unattached:
            client.command(f"DETACH TABLE {table}")
            unattached.add(table)
        client.command(f"ATTACH TABLE {table}")
        unattached.discard(table)
        if found := broken(table) - before:
            log.warning("table %s had broken parts, now detached (the parts they had merged are read instead): %s",
                        table, ", ".join(sorted(found)))


class Gate:
    """A shared/exclusive lock: statements share it, a reload takes it alone. A reload waiting
    keeps new statements out, so a steady stream of reads cannot starve it. `generation` counts
    the reloads done, so that of several statements which met the same broken part, only the
    first reloads the table."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sharing = 0
        self._exclusive = False
        self._waiting = 0
        self.generation = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._sharing += 1
        try:
            yield
        finally:
            with self._cond:
                self._sharing -= 1
                if not self._sharing:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._sharing:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self.generation += 1
                self._cond.notify_all()


# Reloads `table` unless the gate's generation moved past the one given (someone reloaded since).
Heal = Callable[[str, int], None]


class GuardedClient:
    """A clickhouse-connect client whose statements hold the store's gate shared and, when one
    meets a broken part (and the store can heal: chdb), have the table reloaded and run again."""

    def __init__(self, client: Client, gate: Gate, database: str, heal: Heal | None) -> None:
        self._client = client
        self._gate = gate
        self._database = database
        self._heal = heal

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._client.query, args, kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._client.command, args, kwargs)

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._client.insert, args, kwargs)

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._client.insert_arrow, args, kwargs)

    def close(self) -> None:
        self._client.close()

    def unguarded(self) -> Client:
        """The client itself, for the reload, which holds the gate already."""
        return self._client

    def _run(self, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Two reloads at most: one done by another statement meanwhile, then one of our own.
        for _ in range(2):
            generation = self._gate.generation
            with self._gate.shared():
                try:
                    return call(*args, **kwargs)
                except DatabaseError as exc:
                    table = broken_table(exc, self._database) if self._heal is not None else None
                    if table is None:
                        raise
            assert self._heal is not None
            self._heal(table, generation)
        with self._gate.shared():
            return call(*args, **kwargs)
