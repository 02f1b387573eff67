"""The free-space floor's arithmetic and how often it looks at the volume (clock passed in)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from inferwatch.diskspace import DiskGuard, Floor, Space, refusal
from inferwatch.errors import InsufficientStorage

GiB = 2**30


def test_the_floor_is_the_larger_of_a_size_and_a_share() -> None:
    floor = Floor.parse("1GiB,5%")
    assert floor == Floor(GiB, 5.0)
    assert floor.of(100 * GiB) == 5 * GiB
    assert floor.of(10 * GiB) == GiB
    assert Floor.parse("500MB") == Floor(500 * 10**6, 0.0)
    assert Floor.parse(" 2.5 % ") == Floor(0, 2.5)
    assert Floor.parse("0").of(100 * GiB) == 0


@pytest.mark.parametrize("text", ["", "abc", "5%%", "-1GiB", "101%", "1 parsec", "1GiB;5%"])
def test_a_floor_that_means_nothing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="free-space floor"):
        Floor.parse(text)


def test_the_volume_is_looked_at_once_a_second_at_most(tmp_path: Path) -> None:
    now = [0.0]
    guard = DiskGuard(tmp_path, Floor(), every_s=1.0, clock=lambda: now[0])
    first = guard.space()
    now[0] = 0.9
    assert guard.space() is first  # no statvfs within the second
    now[0] = 1.0
    second = guard.space()
    assert second is not first
    assert guard.refresh() is not second  # a failed write looks now


def test_below_the_floor_a_write_gets_507_naming_the_volume_the_free_space_and_the_floor(tmp_path: Path) -> None:
    guard = DiskGuard(tmp_path, Floor(percent=100.0))
    with pytest.raises(InsufficientStorage) as refused:
        guard.check()
    assert refused.value.status == 507 and refused.value.headers["Retry-After"].isdigit()
    space = guard.space()
    assert space.volume in refused.value.detail and str(space.floor) in refused.value.detail
    DiskGuard(tmp_path, Floor()).check()  # no floor: never refused
    assert Space("/v", free=10, total=100, floor=11).low and not Space("/v", free=11, total=100, floor=11).low


def test_the_wait_a_refusal_asks_for_is_the_guards_setting(tmp_path: Path) -> None:
    """`--disk-retry-after` reaches the 507 the guard raises and the one for a file the disk refused."""
    guard = DiskGuard(tmp_path, Floor(percent=100.0), retry_after_s=3)
    with pytest.raises(InsufficientStorage) as refused:
        guard.check()
    assert refused.value.headers["Retry-After"] == "3"
    assert refusal(OSError(errno.ENOSPC, "full"), guard).headers["Retry-After"] == "3"
    assert refusal(OSError(errno.ENOSPC, "full"), None).headers["Retry-After"] == "10"


def test_the_probe_writes_syncs_and_removes_a_small_file(tmp_path: Path) -> None:
    assert DiskGuard(tmp_path, Floor()).writable()
    assert list(tmp_path.iterdir()) == []
