"""Settings shared by the CLI and the server, each declared once.

A setting is a field of `Settings` whose metadata (from `setting()`) gives its help, its flag of
`inferwatch serve` and its `INFERWATCH_*` environment variable, and its bounds: the CLI makes its
options from these (`cli.py`), the README's "Configuration" table lists them (a test holds the two
together), and everything else receives the resolved `Settings`, never reading the environment.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any


def setting(default: Any, help: str, *, flag: str | None = None, low: float | None = None) -> Any:
    """A field's default and what the CLI says of it; `flag` defaults to the field's name as a
    flag without a trailing `_s` (`header_timeout_s` is `--header-timeout`), `low` is a minimum."""
    return field(default=default, metadata={"help": help, "flag": flag, "low": low})


def flag_of(f: Field[Any]) -> str:
    return f.metadata["flag"] or "--" + f.name.removesuffix("_s").replace("_", "-")


def env_of(f: Field[Any]) -> str:
    return "INFERWATCH_" + flag_of(f).removeprefix("--").partition("/")[0].replace("-", "_").upper()


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = setting("127.0.0.1", "Address to listen on.")
    port: int = setting(8420, "Port to listen on.")
    data_dir: Path = setting(Path("./inferwatch-data"), "Holds the embedded store, images and server files.")
    store_url: str | None = setting(None, "Store URL; default duckdb:///<data-dir>/inferwatch.duckdb.",
                                    flag="--store")
    # Bounds memory under overload.
    queue_max_rows: int = setting(500_000, "Rows waiting to be written before ingest answers 503.", low=1)
    # A slow writer must not make every client wait forever: a request still queued after this is
    # withdrawn and answered 503 (ingest/writer.py says why only queued ones).
    commit_timeout_s: float = setting(30.0, "Seconds a request's rows may wait for the writer before"
                                            " ingest answers 503 (nothing written).", low=0.01)
    # So `make run` has a key to print.
    default_workspace: str = setting("default", "Name of the workspace created on first start.")
    # The inference server reports every 60 s by default.
    device_offline_after_s: float = setting(300.0, "Seconds of silence after which a device is offline.", low=1)
    # One runaway client must not take the whole server; the queue's 503 covers all clients.
    rate_limit: float = setting(0.0, "Requests a second per API key, past which 429; 0: no limit.", low=0)
    rate_limit_burst: int = setting(100, "Requests one key may send at once before the rate applies.", low=1)
    # Slow-loris clients.
    header_timeout_s: float = setting(10.0, "Seconds for a request's headers to arrive, else 408.", low=0.1)
    body_timeout_s: float = setting(120.0, "Seconds for a request's body to arrive after its headers, else 408.",
                                    low=0.1)
    keep_alive_timeout_s: float = setting(30.0, "Seconds an idle kept-alive connection stays open.", low=0.1)
    image_store: str | None = setting(None, "Object store URL for uploaded images (s3://bucket/prefix, gs://,"
                                            " az://, file://); default <data-dir>/images.")
    proxy_upstream: str | None = setting(None, "An inference server to proxy at /proxy, recording every"
                                               " inference it answers.")
    proxy_workspace: str | None = setting(None, "Where the proxy records a request whose API key is no"
                                                " inferwatch key.")
    # Each rule has its own every_s; this is how often the evaluator looks for due ones.
    alert_interval_s: float = setting(15.0, "Seconds between the alert evaluator's looks for due rules.", low=0.05)
    evaluator: bool = setting(True, "Evaluate alerts and sweep retention in this process; with several replicas"
                                    " of one ClickHouse store, exactly one runs with --evaluator.",
                              flag="--evaluator/--no-evaluator")
    smtp_url: str | None = setting(None, "Mail relay for email alerts: smtp://[user:pass@]host:port[?starttls=1]"
                                         " or smtps://...")
    smtp_from: str = setting("inferwatch@localhost", "Sender of alert emails.")
    retention_interval_s: float = setting(3600.0, "Seconds between retention sweeps.", low=0.05)
    # Later values count under `other`, so what clients send cannot grow a scrape unbounded.
    metrics_max_label_values: int = setting(100, "Distinct models, devices and classes (each) a workspace's"
                                                 " Prometheus series name; later ones count under `other`.", low=1)
    # The store must never meet a full disk (diskspace.py): writes are refused below this.
    min_free_space: str = setting("1GiB,5%", "Free space kept on the data volume, below which every write answers"
                                             " 507: a size (500MiB), a share (5%), or both (the larger counts);"
                                             " 0 for none.")
    # Freeing space takes a person or a retention sweep, not a moment; a refusal costs the server
    # little, so devices may ask this often.
    disk_retry_after_s: int = setting(10, "Seconds a write refused for disk space (507) asks the client to wait"
                                          " (its Retry-After).", low=1)

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


SETTINGS: tuple[Field[Any], ...] = fields(Settings)
