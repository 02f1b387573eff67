"""The SDK's on-disk queue: batches that could not be sent wait here, across restarts of the
user's process, until inferwatch answers again.

A batch is one file of NDJSON lines (the native ingest format), gzipped as it will be sent,
written to a temporary name, flushed and renamed, so a crash never leaves half a batch behind.
Files are taken oldest first. A sender claims a file by renaming it with its process id, so two
processes sharing the folder never send the same file at once; a claim whose process is gone is
given back at the next start. Sending a file twice (a crash between the server's answer and the
unlink) is harmless: the server counts an inference once.

The folder is bounded in bytes: when a new batch does not fit, the oldest batches are dropped to
make room (the newest data is the most useful to a live dashboard), and the caller counts them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

_SUFFIX = ".ndjson.gz"


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    path: Path
    items: int


class Spool:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self._release_orphans()

    def put(self, body: bytes, items: int) -> int:
        """Keeps a gzipped batch of `items` lines; returns how many older items were dropped to
        make room (the batch itself is dropped, counted in that number, if it alone is too big)."""
        if len(body) > self.max_bytes:
            return items
        dropped = 0
        waiting = self._waiting()
        used = sum(size for _, size in waiting)
        while waiting and used + len(body) > self.max_bytes:
            path, size = waiting.pop(0)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                used -= size
                dropped += _items_of(path)
        name = f"{time.time_ns():020d}-{items}-{secrets.token_hex(4)}{_SUFFIX}"
        tmp = self.folder / f".tmp-{os.getpid()}-{name}"
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / name)
        return dropped

    def claim(self) -> SpooledBatch | None:
        """The oldest waiting batch, renamed as this process's; None when the folder is empty."""
        for path, _ in self._waiting():
            claimed = path.with_name(f"{path.name}.{os.getpid()}")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:  # another process took it first
                continue
            return SpooledBatch(claimed, _items_of(path))
        return None

    @staticmethod
    def read(batch: SpooledBatch) -> bytes:
        return batch.path.read_bytes()

    @staticmethod
    def done(batch: SpooledBatch) -> None:
        batch.path.unlink(missing_ok=True)

    @staticmethod
    def release(batch: SpooledBatch) -> None:
        """Gives a claimed batch back (it could not be sent now)."""
        with contextlib.suppress(FileNotFoundError):
            os.rename(batch.path, batch.path.with_name(batch.path.name.rsplit(".", 1)[0]))

    def waiting_items(self) -> int:
        return sum(_items_of(path) for path, _ in self._waiting())

    def _waiting(self) -> list[tuple[Path, int]]:
        found = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    found.append((Path(entry.path), entry.stat().st_size))
        return sorted(found)

    def _release_orphans(self) -> None:
        for entry in os.scandir(self.folder):
            name, _, pid = entry.name.rpartition(".")
            if name.endswith(_SUFFIX) and pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(entry.path, self.folder / name)
            elif entry.name.startswith(".tmp-"):  # a write cut short by a crash
                writer = entry.name.split("-")[1]
                if writer.isdigit() and not _alive(int(writer)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def _items_of(path: Path) -> int:
    try:
        return int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a claim of an earlier process that had our pid: ours is just starting
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
