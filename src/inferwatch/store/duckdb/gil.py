"""Short waits for the interpreter lock while the writer is inside DuckDB (`short_gil_waits`).

duckdb-python gives up the GIL while a statement runs and takes it back many times before the
call returns: some seven to ten times for any call (`SELECT 1` included), once more for each
further statement of a script, about ten more for each Arrow table a statement scans, and once
after each task it runs. The Vision Events commit (BEGIN, four INSERTs scanning the request's
Arrow tables and COMMIT, one script) takes it back 65 times. Under load the event loop holds
the GIL, decoding the next requests, and each take first waits out the switch interval (0.2 ms,
set in `cli.py`) before the loop is asked to let go. In one process, a commit of 800 events
took 23.5 ms alone and 44.6 ms beside a thread decoding requests; at a 10 us interval for the
commit, 31.0 ms (1 us: no better). Behind HTTP, batch create went from 14,900-16,150 to
19,000-19,550 events/s (docs/performance.md).

How often the lock changes hands stays the same (the writer takes it back as often either way);
only the writer's wait shrinks. Outside DuckDB the server's own interval holds, so Python code
on two threads does not trade the lock twenty times as often. The interval concerns the whole
process: only the writer sets it, with the store's write lock held, so no two writes interleave
their settings and restores. Inference ingest's writes (`DuckDBStore.append`) keep the server's
interval: there the event loop, not the writer, is the bottleneck, and the same change measured
nothing but noise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

WRITE_SWITCH_INTERVAL_S = 0.00001


@contextmanager
def short_gil_waits() -> Iterator[None]:
    """The switch interval at `WRITE_SWITCH_INTERVAL_S` for the block, then as it was."""
    was = sys.getswitchinterval()
    sys.setswitchinterval(WRITE_SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(was)
