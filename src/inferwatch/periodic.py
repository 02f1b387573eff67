"""Work the server repeats on a thread of its own (alert evaluation, retention sweeps)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls `work` every `interval_s` until stopped. A failure is logged and the next round
    runs: a bad rule or a transient store error must not end the schedule."""

    def __init__(self, name: str, interval_s: float, work: Callable[[], object]) -> None:
        self._interval_s = interval_s
        self._work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"inferwatch-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """For long rounds: stop between items instead of finishing the round."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Returns once the round in progress, if any, has finished."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._work()
            except Exception:
                log.exception("%s failed", self._thread.name)
