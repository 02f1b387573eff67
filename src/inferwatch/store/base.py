"""What every storage backend provides: append, upsert metadata, the product's queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from inferwatch.drift import SampleRow
from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.query.performance import Counts, GroundTruth


class StoreLocked(Exception):
    """Another process holds the store (an embedded database admits one process)."""


@dataclass(frozen=True, slots=True)
class WorkspaceRecord:
    id: int
    slug: str
    key_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended, in the list's order (time, inference id, image index; newest first)."""

    ts_us: int
    inference_id: str
    image_index: int


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An uploaded image of a workspace; its bytes are the file named by sha256."""

    ws: int
    sha256: str
    inference_id: str | None
    content_type: str
    width: int | None
    height: int | None
    size_bytes: int
    name: str | None
    project: str | None
    batch: str | None
    tags: list[str]
    uploaded_at: datetime


GROUPS = ("model_id", "device_id", "class")


class Store(Protocol):
    def migrate(self) -> int:
        """Brings the schema to the current version; returns that version."""
        ...

    def close(self) -> None: ...

    def checkpoint(self) -> None:
        """Folds the write-ahead log into the store's file (before a backup copies it)."""
        ...

    def append(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> int:
        """Writes all in one transaction; inferences already stored are skipped, device facts upserted.
        Returns how many inferences were new."""
        ...

    def workspaces(self) -> list[WorkspaceRecord]: ...

    def create_workspace(self, slug: str, key_hash: str) -> WorkspaceRecord: ...

    def set_key_hash(self, slug: str, key_hash: str) -> WorkspaceRecord: ...

    def list_inferences(
        self, ws: int, filters: Filters, after: Cursor | None, limit: int
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """A page, and where the next one starts (None on the last page)."""
        ...

    def get_inference(self, ws: int, inference_id: str) -> list[dict[str, Any]]:
        """Every image stored under the id (a batched request shares one id)."""
        ...

    def metadata_of(self, ws: int, inference_ids: list[str]) -> dict[str, dict[str, str]]: ...

    def totals(self, ws: int, filters: Filters) -> dict[str, Any]: ...

    def series(
        self, ws: int, filters: Filters, bucket: timedelta, group_by: str | None
    ) -> list[dict[str, Any]]:
        """Rows of (time, group, figures); group_by is one of GROUPS or `meta.<field>`."""
        ...

    def class_stats(self, ws: int, start: datetime, end: datetime, model_ids: tuple[str, ...]) -> dict[str, Any]:
        """Totals, inferences per model and figures per (model, predicted class) over [start, end)."""
        ...

    def devices(self, ws: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every device with its facts, last seen, and its inferences over [start, end)."""
        ...

    def metadata_fields(self, ws: int, top: int) -> list[dict[str, Any]]: ...

    # -- the dashboard's figures (same filters as everything else) --------------------------
    def models(self, ws: int, filters: Filters) -> list[dict[str, Any]]:
        """One row per model: inferences, average confidence and time, p95 time, latest inference."""
        ...

    def distributions(self, ws: int, filters: Filters, bins: int) -> dict[str, Any]:
        """Predictions per class, and confidence histograms over `bins` equal bins of [0, 1]."""
        ...

    def group_table(self, ws: int, filters: Filters, group_by: str) -> list[dict[str, Any]]:
        """One row per value of model_id, device_id or meta.<field>, with its figures and class mix."""
        ...

    # -- ground truth (query.performance) ------------------------------------------------------
    def ground_truth(self, ws: int, model_id: str) -> GroundTruth | None: ...

    def set_ground_truth(self, ws: int, model_id: str, setting: GroundTruth | None) -> None:
        """A write: from the writer thread."""
        ...

    def performance_counts(self, ws: int, filters: Filters, setting: GroundTruth, bucket: timedelta,
                           group_field: str | None, bins: int) -> Counts:
        """Verdict against label for every inference in the filters, counted every way the
        performance report needs."""
        ...

    # -- drift ---------------------------------------------------------------------------------
    def drift_sample(self, ws: int, filters: Filters, limit: int) -> list[SampleRow]:
        """At most `limit` inferences in the filters, newest first, as drift reads them."""
        ...

    def insert_image(self, image: ImageRecord) -> bool:
        """Stores the image's row; False if the workspace already holds these bytes (then only a
        missing inference id is filled in)."""
        ...

    def image(self, ws: int, sha256: str) -> ImageRecord | None: ...

    def image_of_inference(self, ws: int, inference_id: str) -> ImageRecord | None:
        """The latest image uploaded for the inference."""
        ...
