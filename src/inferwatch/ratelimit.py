"""Per-key rate limit: a token bucket for each API key, refilled at a steady rate.

Only keys that belong to a workspace get a bucket, so the table's size is bounded by the number
of workspaces, whatever keys clients invent (a wrong key is refused with 401 anyway). Buckets are
keyed by the key's SHA-256, the form in which keys are stored, never by the key itself.
The limit protects the server from one runaway client; the ingest queue's 503 protects it from
all clients together.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """`rate` requests a second per key, with bursts of up to `burst` requests."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()  # sync routes run in a thread pool
        self._buckets: dict[str, tuple[float, float]] = {}  # key hash -> (tokens, at)

    def take(self, key_hash: str, now: float | None = None) -> float:
        """Takes one token for this key: 0 if granted, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(key_hash, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_hash] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_hash] = (tokens, now)
            return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> int:
        """Whole seconds for a `Retry-After` header (at least 1)."""
        return max(1, math.ceil(wait_s))
