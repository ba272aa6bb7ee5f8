"""Celery tasks of the features app: thin wrappers around features/health.py."""

from __future__ import annotations

from celery import shared_task

from features import health


@shared_task(name="features.run_due_health_checks")
def run_due_health_checks() -> int:
    """Beat, every minute: run the live cards' checks whose interval has passed."""
    return health.run_due_health_checks()
