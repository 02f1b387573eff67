"""The retention sweeper: keeps each workspace within its policy (days and/or inferences, images
apart, since they are the large part).

A thread in the server process sweeps every `retention_interval_s` (and on demand: the admin
route). Each workspace's sweep is one write through the writer, so it lands between commits;
image files no workspace names any more are deleted after their rows. On DuckDB a checkpoint
after a sweep that deleted anything folds the deletions into the file, whose freed blocks new
rows reuse (the file does not shrink: `inferwatch backup` writes a compact copy). On ClickHouse
rows are deleted by mutation and lightweight deletes, and the space returns as parts merge.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from inferwatch.image_store import ImageStore, LocalImages
from inferwatch.ingest.writer import Writer
from inferwatch.periodic import Periodic
from inferwatch.store.base import RetentionPolicy, Store, SweepResult


def sweep_workspace(store: Store, ws: int, policy: RetentionPolicy, now: datetime) -> SweepResult:
    """One workspace's sweep (in the writer thread)."""
    before = now - timedelta(days=policy.max_days) if policy.max_days is not None else None
    images_before = now - timedelta(days=policy.image_max_days) if policy.image_max_days is not None else None
    return store.sweep(ws, before, policy.max_inferences, images_before)


def delete_image_files(images: ImageStore, sha256s: list[str]) -> int:
    """Removes the files (and thumbnails) of images no workspace holds; an object store's are
    left to its own lifecycle rules, which inferwatch cannot see."""
    if not isinstance(images, LocalImages):
        return 0
    removed = 0
    for sha in sha256s:
        path = images.path(sha)
        for file in [path, *path.parent.glob(f"{path.name}.t*")]:
            try:
                file.unlink()
                removed += file == path
            except FileNotFoundError:
                pass
    return removed


class Sweeper:
    def __init__(self, store: Store, writer: Writer, images: ImageStore, interval_s: float) -> None:
        self._store = store
        self._writer = writer
        self._images = images
        self._lock = threading.Lock()
        self._schedule = Periodic("retention", interval_s, self.sweep_all)

    def start(self) -> None:
        self._schedule.start()

    def stop(self) -> None:
        self._schedule.stop()

    def sweep_all(self, now: datetime | None = None) -> dict[str, Any]:
        """Every workspace with a policy; what was removed, per workspace id."""
        with self._lock:
            moment = now or datetime.now(UTC).replace(tzinfo=None)
            out: dict[str, Any] = {}
            deleted = False
            for ws, policy in self._store.retention_policies().items():
                result = self._writer.maintain(partial(sweep_workspace, ws=ws, policy=policy, now=moment))
                files = delete_image_files(self._images, result.orphan_images)
                out[str(ws)] = {"inferences": result.inferences, "metadata": result.metadata,
                                "images": result.images, "image_files": files, "events": result.events}
                deleted = deleted or bool(result.inferences or result.metadata or result.images or result.events)
            if deleted:
                self._writer.maintain(lambda s: s.checkpoint())
            return out
