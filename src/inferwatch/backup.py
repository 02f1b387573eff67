"""Backups of a data dir: the DuckDB store, consistent, and the uploaded images beside it.

A backup is a folder: `inferwatch.duckdb` (with its `.wal` if one was left), `images/` (when images
are kept in the data dir) and `backup.json` (when, which schema version). While a server runs, the
copy of the store is made in its writer thread: no commit can happen meanwhile, so the file and its
write-ahead log are one committed state (ingest waits, or gets 503 once the queue fills, for the
time the copy takes). A CHECKPOINT first folds the log into the file. Images are copied after the
store: an image's file is written before its row, so every image the copied store names is
already on disk. Images in an object store are not copied: back up the bucket by its own means.

Restoring copies a backup into a data dir on which no server runs; the DuckDB file admits one
process, and replacing it under a running server would lose what it writes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import msgspec

from inferwatch.config import Settings
from inferwatch.store.base import Store

STORE_FILE = "inferwatch.duckdb"
MANIFEST = "backup.json"


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason for the person running it."""


def store_path(settings: Settings) -> Path:
    """The DuckDB file behind the settings' store URL."""
    url = urlparse(settings.resolved_store_url)
    if url.scheme != "duckdb":
        raise BackupError(f"backups cover the embedded DuckDB store, not {settings.resolved_store_url}")
    return Path(url.path)


def check_target(target: Path) -> None:
    """A backup goes into a new or empty folder, never over another backup."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not an empty folder")


def copy_store(store: Store, source: Path, target: Path, schema_version: int) -> None:
    """Checkpoints the store and copies its file (and log) into `target`.

    Must run where no commit can interleave: in the server's writer thread, or in a process that
    holds the store's lock.
    """
    check_target(target)
    store.checkpoint()
    target.mkdir(parents=True, exist_ok=True)
    _copy_file(source, target / STORE_FILE)
    wal = source.with_name(source.name + ".wal")
    if wal.exists() and wal.stat().st_size:
        _copy_file(wal, target / (STORE_FILE + ".wal"))
    manifest = {"created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "schema_version": schema_version,
                "store": STORE_FILE}
    (target / MANIFEST).write_bytes(msgspec.json.encode(manifest))


def copy_images(settings: Settings, target: Path) -> int:
    """Copies the data dir's images (originals and thumbnails) into the backup; returns how many files."""
    if settings.image_store:
        return 0
    return _copy_tree(settings.data_dir / "images", target / "images")


def restore(backup: Path, settings: Settings, replace: bool) -> None:
    """Puts a backup's store and images into the settings' data dir (no server may run there)."""
    source = backup / STORE_FILE
    if not source.is_file():
        raise BackupError(f"{backup} holds no {STORE_FILE}: not a backup")
    target = store_path(settings)
    if target.exists() and not replace:
        raise BackupError(f"{target} exists; pass --replace to overwrite it with the backup")
    target.parent.mkdir(parents=True, exist_ok=True)
    wal = target.with_name(target.name + ".wal")
    staged = target.with_name(target.name + ".restoring")
    _copy_file(source, staged)
    backup_wal = backup / (STORE_FILE + ".wal")
    if wal.exists():
        wal.unlink()  # the old store's log must not be replayed onto the restored file
    os.replace(staged, target)
    if backup_wal.exists():
        _copy_file(backup_wal, wal)
    if not settings.image_store:
        _copy_tree(backup / "images", settings.data_dir / "images")


def _copy_file(source: Path, target: Path) -> None:
    """Copies and flushes to disk, so a backup that reported success survives a crash."""
    shutil.copyfile(source, target)
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def _copy_tree(source: Path, target: Path) -> int:
    """Copies every file not already there (image files are named by their content, never changed)."""
    copied = 0
    if not source.is_dir():
        return 0
    for path in source.rglob("*"):
        if not path.is_file() or path.name.startswith(".tmp-"):  # an image being written
            continue
        dest = target / path.relative_to(source)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        copied += 1
    return copied
