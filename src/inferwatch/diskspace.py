"""The data volume's free-space floor: writes are refused (507) while some room is still left.

A storage engine that meets a full disk mid-commit fails in ways that need a reopen to heal
(DuckDB invalidates its database after a failed write), and the same volume holds the images and
the server's own files. So every write the API takes is refused below a floor, with a detail that
says which volume, how much is free and what the floor is; reads go on. The writer's own
maintenance (a retention sweep, which frees space; alert states; a backup) is not refused: the
floor is the headroom it runs in.

`statvfs` is asked at most once every CHECK_EVERY_S, whatever the request rate; a disk that fills
between two looks is met by the engine and handled by the writer's failure path (`ingest/writer.py`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inferwatch.errors import InsufficientStorage, RetryLater, StoreUnavailable

CHECK_EVERY_S = 1.0
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]*)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


@dataclass(frozen=True, slots=True)
class Floor:
    """The free space to keep: the larger of a size and a share of the volume."""

    size: int = 0
    percent: float = 0.0

    def of(self, total: int) -> int:
        return max(self.size, int(total * self.percent / 100))

    @classmethod
    def parse(cls, text: str) -> Floor:
        """`1GiB,5%` (the larger of both), `500MB`, `5%` or `0` (no floor)."""
        size, percent = 0, 0.0
        for part in (p.strip().lower() for p in text.split(",")):
            if (match := _PERCENT.match(part)) and float(match.group(1)) <= 100:
                percent = max(percent, float(match.group(1)))
            elif (match := _SIZE.match(part)) and match.group(2) in _UNITS:
                size = max(size, int(float(match.group(1)) * _UNITS[match.group(2)]))
            else:
                raise ValueError(f"free-space floor {text!r}: expected a size (500MiB, 1GB), a share (5%),"
                                     " or both separated by a comma")
        return cls(size, percent)


def human(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@dataclass(frozen=True, slots=True)
class Space:
    """One look at the volume: bytes free to an unprivileged writer, its size, and the floor."""

    volume: str
    free: int
    total: int
    floor: int

    @property
    def low(self) -> bool:
        return self.free < self.floor

    def describe(self) -> str:
        return (f"{human(self.free)} free ({self.free} bytes) on the data volume {self.volume},"
                f" below the free-space floor of {human(self.floor)} ({self.floor} bytes)")


def mount_point(path: Path) -> str:
    """The folder the volume holding `path` is mounted on (what an operator frees space on)."""
    path = path.resolve()
    dev = path.stat().st_dev
    while path.parent != path and path.parent.stat().st_dev == dev:
        path = path.parent
    return str(path)


class DiskGuard:
    """The floor of the volume holding `path`, looked at no more often than `every_s`. Every
    refusal for disk space asks the client to wait `retry_after_s` (the server's
    `--disk-retry-after`; None: the 507's own default)."""

    def __init__(self, path: Path, floor: Floor, every_s: float = CHECK_EVERY_S,
                 clock: Callable[[], float] = time.monotonic, *, retry_after_s: int | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.floor = floor
        self.retry_after_s = retry_after_s
        self.volume = mount_point(path)
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._space = self._look()

    def _look(self) -> Space:
        st = os.statvfs(self.path)
        total = st.f_blocks * st.f_frsize
        return Space(self.volume, st.f_bavail * st.f_frsize, total, self.floor.of(total))

    def space(self) -> Space:
        """The last look, taken again if it is older than `every_s`."""
        now = self._clock()
        if now - self._at >= self._every_s:
            with self._lock:
                if now - self._at >= self._every_s:
                    self._space, self._at = self._look(), now
        return self._space

    def refresh(self) -> Space:
        """A look now (after a write failed: was it the disk?)."""
        with self._lock:
            self._space, self._at = self._look(), self._clock()
        return self._space

    def check(self) -> None:
        """Raises the 507 every write below the floor gets."""
        if self.space().low:
            raise self.refused()

    def refused(self) -> InsufficientStorage:
        """The 507 every write below the floor gets, as of the last look."""
        return InsufficientStorage(self._space.describe() + "; free some space (or lower --min-free-space)",
                                   retry_after_s=self.retry_after_s)

    def writable(self) -> bool:
        """Whether a small file can be written, synced and removed on the volume now: the probe the
        writer waits for before it reopens a store that failed."""
        probe = self.path / f".probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"\0" * 65536)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return True


def refusal(exc: OSError, guard: DiskGuard | None) -> RetryLater:
    """The answer for a write of a file that failed: 507 if the disk is full, else 503."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = guard.refresh().describe() if guard is not None else "the data volume is full"
        return InsufficientStorage(f"the file could not be written: {where}",
                                   retry_after_s=guard.retry_after_s if guard is not None else None)
    return StoreUnavailable(f"the file could not be written: {exc.strerror or exc}")
