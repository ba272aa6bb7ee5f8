"""Retention: history older than its configured age is deleted, in small batches.

Run logs, health-check results and the rows of workers that stopped are pruned daily
(``pipeline.prune_history`` on beat). Each batch is its own short transaction on primary keys,
so a large backlog never holds long locks or one long transaction; the newest health-check
result of every card is kept whatever its age, so a badge never turns into "not checked".
Ages come from ``RUNWAY_RETAIN_*_DAYS``; 0 keeps that history forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.utils import timezone

from features.models import HealthCheckResult
from pipeline.models import Run, RunLog, WorkerHeartbeat

BATCH = 1000


def delete_in_batches(rows: QuerySet[Model], *, batch: int = BATCH) -> int:
    """Delete `rows` `batch` primary keys at a time, each batch in its own transaction."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            rows.model._default_manager.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


def _cutoff(days: int, now: datetime) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def prune_history(now: datetime | None = None, *, batch: int = BATCH) -> dict[str, int]:
    """Delete what is past its age: {"run_logs", "health_results", "workers"} deleted counts.

    Run logs go with their run's age (a finished run's whole log at once, never the middle of
    an active run's); health-check results by when they ran, keeping each card's newest;
    worker heartbeats of workers stopped or silent for longer than their age.
    """
    now = now or timezone.now()
    counts = {"run_logs": 0, "health_results": 0, "workers": 0}
    logs_before = _cutoff(settings.RUNWAY_RETAIN_RUN_LOGS_DAYS, now)
    if logs_before is not None:
        old_runs = Run.objects.filter(
            status__in=Run.FINISHED_STATUSES, finished_at__lt=logs_before
        ).values("pk")
        counts["run_logs"] = delete_in_batches(
            RunLog.objects.filter(run_id__in=Subquery(old_runs)), batch=batch
        )
    results_before = _cutoff(settings.RUNWAY_RETAIN_HEALTH_RESULTS_DAYS, now)
    if results_before is not None:
        newest = HealthCheckResult.objects.filter(feature=OuterRef("feature")).order_by(
            "-checked_at", "-id"
        )
        counts["health_results"] = delete_in_batches(
            HealthCheckResult.objects.filter(checked_at__lt=results_before).exclude(
                pk=Subquery(newest.values("pk")[:1])
            ),
            batch=batch,
        )
    workers_before = _cutoff(settings.RUNWAY_RETAIN_WORKERS_DAYS, now)
    if workers_before is not None:
        counts["workers"] = delete_in_batches(
            WorkerHeartbeat.objects.filter(last_seen__lt=workers_before), batch=batch
        )
    return counts
