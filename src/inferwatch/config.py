"""Settings shared by the CLI and the server.

Every setting is a flag of `inferwatch serve` and an `INFERWATCH_*` environment variable (Typer
reads both); this module only holds the resolved values and the defaults derived from others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420
DEFAULT_DATA_DIR = Path("./inferwatch-data")
DEFAULT_QUEUE_MAX_ROWS = 500_000
DEFAULT_DEVICE_OFFLINE_AFTER_S = 300.0
DEFAULT_RATE_LIMIT = 0.0  # requests a second per API key; 0: no limit
DEFAULT_RATE_LIMIT_BURST = 100
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 120.0
DEFAULT_KEEP_ALIVE_TIMEOUT_S = 30.0
DEFAULT_ALERT_INTERVAL_S = 15.0
DEFAULT_RETENTION_INTERVAL_S = 3600.0
DEFAULT_SMTP_FROM = "inferwatch@localhost"
DEFAULT_METRICS_MAX_LABEL_VALUES = 100


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    store_url: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Rows waiting for the writer before ingest answers 503: bounds memory under overload.
    queue_max_rows: int = DEFAULT_QUEUE_MAX_ROWS
    # A slow writer must not make every client wait forever for its acknowledgement.
    commit_timeout_s: float = 30.0
    # Name of the workspace created on first start, so `make run` has a key to print.
    default_workspace: str = "default"
    # A device silent this long is offline (the inference server reports every 60 s by default).
    device_offline_after_s: float = DEFAULT_DEVICE_OFFLINE_AFTER_S
    # Requests a second per API key (a token bucket holding up to rate_limit_burst), 0 for none:
    # one runaway client must not take the whole server; the queue's 503 covers all clients.
    rate_limit: float = DEFAULT_RATE_LIMIT
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    # A request's headers, then its body, must arrive within these (slow-loris clients); an idle
    # kept-alive connection is closed after keep_alive_timeout_s.
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    keep_alive_timeout_s: float = DEFAULT_KEEP_ALIVE_TIMEOUT_S
    # Where uploaded images are kept: an object store URL, or None for `<data_dir>/images`.
    image_store: str | None = None
    # An inference server to proxy at /proxy (recording its answers), and the workspace for
    # requests whose key is not an inferwatch key; None: no proxy.
    proxy_upstream: str | None = None
    proxy_workspace: str | None = None
    # How often the alert evaluator wakes to look for due rules (each rule has its own every_s);
    # `evaluator` False: this process never evaluates (all replicas of a ClickHouse store but one).
    alert_interval_s: float = DEFAULT_ALERT_INTERVAL_S
    evaluator: bool = True
    # The mail relay for email channels (smtp://[user:pass@]host:port[?starttls=1], smtps://...).
    smtp_url: str | None = None
    smtp_from: str = DEFAULT_SMTP_FROM
    # How often the retention sweeper enforces the workspaces' policies (only where `evaluator`).
    retention_interval_s: float = DEFAULT_RETENTION_INTERVAL_S
    # Distinct values each label (model, device, class) of a workspace's Prometheus series may
    # take; later values count under `other`, so what clients send cannot grow a scrape unbounded.
    metrics_max_label_values: int = DEFAULT_METRICS_MAX_LABEL_VALUES

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"duckdb:///{(self.data_dir / 'inferwatch.duckdb').resolve()}"

    @property
    def server_file(self) -> Path:
        """Where a running server says how to reach it (URL and admin token) for the CLI."""
        return self.data_dir / "server.json"

    @property
    def initial_key_file(self) -> Path:
        """The first workspace's key, kept (0600) until rotated so `make run` can show it again."""
        return self.data_dir / "initial-api-key"
