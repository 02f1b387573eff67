"""Storage backends behind one protocol, chosen by a store URL."""

from __future__ import annotations

from urllib.parse import urlparse

from inferwatch.store.base import Store


def open_store(url: str) -> Store:
    """`duckdb:///abs/path.duckdb` (embedded). Other schemes arrive with their backends."""
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        from inferwatch.store.duckdb import DuckDBStore

        return DuckDBStore(parsed.path)
    raise ValueError(f"unsupported store URL {url!r}: expected duckdb:///path")
