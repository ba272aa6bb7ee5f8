from __future__ import annotations

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline runs and workers"

    def ready(self) -> None:
        # Worker lifecycle hooks (heartbeat rows) attach to Celery's signals.
        from pipeline import worker_signals  # noqa: F401
