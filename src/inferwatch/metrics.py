"""Prometheus metrics of one server process, served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "inferwatch_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY
)
INGESTED_ROWS = Counter("inferwatch_ingested_rows", "Inference rows committed", registry=REGISTRY)
METADATA_ROWS = Counter("inferwatch_metadata_rows", "Metadata rows committed", registry=REGISTRY)
REJECTED = Counter("inferwatch_ingest_rejected", "Requests refused because the queue was full",
                   registry=REGISTRY)
QUEUE_ROWS = Gauge("inferwatch_queue_rows", "Rows waiting for the writer", registry=REGISTRY)
COMMIT_SECONDS = Histogram(
    "inferwatch_commit_seconds", "Time of one group commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
DISK_FREE_BYTES = Gauge("inferwatch_disk_free_bytes", "Bytes free on the data volume (as last looked at)",
                        registry=REGISTRY)
DISK_FLOOR_BYTES = Gauge("inferwatch_disk_floor_bytes", "The data volume's free-space floor: writes are refused"
                         " below it", registry=REGISTRY)
WRITES_REFUSED = Gauge("inferwatch_writes_refused", "1 while writes are refused (below the free-space floor,"
                       " or the store being reopened after a failure), else 0", registry=REGISTRY)
