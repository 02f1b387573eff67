"""A tmpfs of a test's own (the tests run as root): a real volume to fill to the last byte."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mounted(mount: Path, size: str) -> Iterator[Path]:
    """`mount` (made here) as a tmpfs of `size` (mount's syntax: `1m`, `160m`), unmounted after."""
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
