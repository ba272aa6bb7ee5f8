from __future__ import annotations

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline runs and workers"

    def ready(self) -> None:
        # Worker lifecycle hooks (heartbeat rows, database connections per task) attach to
        # Celery's signals.
        # Incidents a failing health check opens start their pipeline through the engine.
        from features import health
        from pipeline import task_connections, worker_signals  # noqa: F401
        from pipeline.incidents import launch_incident

        health.set_incident_launcher(launch_incident)
