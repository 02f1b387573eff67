"""The server's scheduled work besides ingest: the alert evaluator and the retention sweeper.

Both run only where `settings.evaluator` holds. A DuckDB store has one process, so that is it; a
ClickHouse store served by several replicas must have exactly one replica started with
`--evaluator` and the rest with `--no-evaluator` (docs/architecture.md), or rules would be
evaluated, and notified, once per replica.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferwatch.alerts.channels import Smtp
from inferwatch.alerts.evaluator import Evaluator
from inferwatch.config import Settings
from inferwatch.image_store import ImageStore
from inferwatch.ingest.writer import Writer
from inferwatch.retention import Sweeper
from inferwatch.store.base import Store


@dataclass(slots=True)
class Schedule:
    evaluator: Evaluator | None
    sweeper: Sweeper | None

    @classmethod
    def start(cls, settings: Settings, store: Store, writer: Writer, images: ImageStore) -> Schedule:
        if not settings.evaluator:
            return cls(None, None)
        smtp = Smtp.from_url(settings.smtp_url, settings.smtp_from) if settings.smtp_url else None
        evaluator = Evaluator(store, writer, settings.alert_interval_s, smtp)
        sweeper = Sweeper(store, writer, images, settings.retention_interval_s)
        evaluator.start()
        sweeper.start()
        return cls(evaluator, sweeper)

    def stop(self) -> None:
        """Before the writer stops: their last writes go through it."""
        if self.evaluator is not None:
            self.evaluator.stop()
        if self.sweeper is not None:
            self.sweeper.stop()
