"""The uploaded images' rows as last read (`DuckDBStore.image`): every Vision Events write looks
up the images its events name, on the event loop, and a statement costs DuckDB a quarter of a
millisecond or more however small its table. One process holds the file and the store's own
methods are the table's only writers: each change forgets what it touched (`changed`), and a read
that began before a change keeps nothing (the generation it saw is gone)."""

from __future__ import annotations

import threading

from inferwatch.store.base import ImageRecord

# Enough for every image a busy workspace names within minutes; past it the cache starts again.
LIMIT = 10_000


class ImageCache:
    def __init__(self, limit: int = LIMIT) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[int, str], ImageRecord] = {}
        self._limit = limit
        self.generation = 0

    def get(self, ws: int, sha256: str) -> ImageRecord | None:
        return self._rows.get((ws, sha256))

    def keep(self, generation: int, record: ImageRecord) -> None:
        """A row read at `generation`; an image not found is not kept (an upload may add it)."""
        with self._lock:
            if generation == self.generation:
                if len(self._rows) >= self._limit:
                    self._rows.clear()
                self._rows[(record.ws, record.sha256)] = record

    def changed(self, key: tuple[int, str] | None = None) -> None:
        """After a change of the image `key` (ws, sha256), or of any (None)."""
        with self._lock:
            self.generation += 1
            if key is None:
                self._rows.clear()
            else:
                self._rows.pop(key, None)
