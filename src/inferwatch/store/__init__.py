"""Storage backends behind one protocol, chosen by a store URL."""

from __future__ import annotations

from urllib.parse import urlparse

from inferwatch.store.base import Store


def open_store(url: str) -> Store:
    """`duckdb:///abs/path.duckdb` (embedded), `clickhouse://user:pass@host:8123/db` (a ClickHouse
    server or cluster over HTTP) or `chdb:///abs/path` (the ClickHouse engine in this process)."""
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        from inferwatch.store.duckdb import DuckDBStore

        return DuckDBStore(parsed.path)
    if parsed.scheme in ("clickhouse", "clickhouses", "chdb"):
        # Imported here: the ClickHouse client libraries are an optional extra.
        try:
            from inferwatch.store.clickhouse import ClickHouseStore

            return ClickHouseStore.from_url(url)
        except ImportError as exc:
            extra = "chdb" if parsed.scheme == "chdb" else "clickhouse"
            raise ValueError(f"the {parsed.scheme} store needs `pip install 'inferwatch[{extra}]'` ({exc})") from None
    raise ValueError(f"unsupported store URL {url!r}: expected duckdb:///path, clickhouse://host:8123/db or chdb:///path")
