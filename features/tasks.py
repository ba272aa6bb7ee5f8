"""Celery tasks of the features app: thin wrappers around the health check schedule.

Both run on the health queue (settings.CELERY_TASK_ROUTES), consumed by its own worker pool
(`health` in the Procfile), never by the pipeline's workers.
"""

from __future__ import annotations

from celery import shared_task

from features import health_schedule


@shared_task(name="features.run_due_health_checks")
def run_due_health_checks() -> int:
    """Beat, every minute: send each due check to the health queue as its own task."""
    return health_schedule.enqueue_due_checks()


@shared_task(name="features.run_health_check")
def run_health_check(feature_id: int) -> None:
    """One card's check, on the health queue."""
    health_schedule.run_check(feature_id)
