"""The writer on a full volume whose engine first failed with something other than "no space"
(chdb can first fail reading a part that the filling disk left broken): once the volume cannot
take a small file, writes are refused 507, not 503, so a client waits for space; once space is
back the writer reopens the store and takes writes again. The volume is a real tmpfs, filled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from inferwatch.diskspace import DiskGuard, Floor
from inferwatch.errors import InsufficientStorage, StoreUnavailable
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.ingest.writer import Writer
from inferwatch.store.duckdb import DuckDBStore
from tests.tmpfs import mounted


class BrokenPartStore(DuckDBStore):
    """A DuckDB store whose appends fail with a read error while `failing`: what chdb can say
    first when the disk fills, in a form the DuckDB store also counts as a storage failure."""

    failing = False

    def append(self, rows: InferenceRows, meta: MetadataRows, devices: object = None) -> int:
        if self.failing:
            raise duckdb.IOException("Could not read from file \"part/columns.bin\": unexpected end of file")
        return super().append(rows, meta)


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    with mounted(tmp_path / "volume", "1m") as mount:
        yield mount


def one_inference(i: int) -> InferenceRows:
    rows = InferenceRows()
    rows.n_predictions.append(0)
    rows.add(1, f"i{i}", 0, 1_767_225_600_000_000, 1_767_225_600_000_000, "m/1", "object-detection", None, [],
             "test", None, None, None, None)
    return rows


def test_a_full_volume_answers_507_whatever_the_engine_said(tmp_path: Path, volume: Path) -> None:
    store = BrokenPartStore(str(tmp_path / "data" / "store.duckdb"))
    store.migrate()
    writer = Writer(store, 10_000, 5.0, disk=DiskGuard(volume, Floor()))
    writer.start()
    try:
        assert writer.submit(one_inference(0), MetadataRows()).result(5) == 1
        filler = volume / "filler"
        with open(filler, "wb") as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        store.failing = True
        with pytest.raises(StoreUnavailable):  # the engine's error alone does not say "full"
            writer.submit(one_inference(1), MetadataRows()).result(5)
        deadline = time.monotonic() + 10
        while not isinstance(refusal(writer), InsufficientStorage) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(refusal(writer), InsufficientStorage)
        filler.unlink()
        store.failing = False
        deadline = time.monotonic() + 10
        while refusal(writer) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.submit(one_inference(2), MetadataRows()).result(5) == 1
    finally:
        writer.stop()
        store.close()


def refusal(writer: Writer) -> Exception | None:
    """What a new write gets now: None while writes are taken."""
    try:
        writer.refuse()
    except (InsufficientStorage, StoreUnavailable) as exc:
        return exc
    return None
