"""Sweeps run by beat: re-dispatch runs whose message was lost, rescue runs whose worker died."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pipeline.engine.locks import lock_card_of_run
from pipeline.engine.runs import enqueue
from pipeline.engine.worker import finish_failed, mark_feature_queued
from pipeline.health import broker_backlog
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log

Status = Run.Status


def dispatch_stale_queued(older_than: timedelta | None = None) -> int:
    """Re-send runs that have waited in the queue too long: their message was probably lost.

    While the broker still holds as many messages as there are waiting runs, the workers are
    just busy; sending more would only grow the backlog. A copy that does arrive twice finds
    nothing to claim.
    """
    older_than = older_than or timedelta(seconds=settings.RUNWAY_DISPATCH_AFTER_SECONDS)
    now = timezone.now()
    cutoff = now - older_than
    due = list(
        Run.objects.filter(status=Status.QUEUED)
        .filter(
            Q(next_attempt_at__isnull=True, queued_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff)
        )
        .values_list("pk", flat=True)[:500]
    )
    if not due:
        return 0
    backlog = broker_backlog()
    if backlog is not None and backlog >= len(due):
        return 0
    sent = 0
    for run_id in due:
        with transaction.atomic():
            stamped = Run.objects.filter(pk=run_id, status=Status.QUEUED).update(
                queued_at=now, next_attempt_at=None
            )
            if not stamped:
                continue
            append_log(
                run_id, "Re-dispatched: queued with no worker claim", level=RunLog.Level.WARNING
            )
            transaction.on_commit(partial(enqueue, run_id), robust=True)
            sent += 1
    return sent


def requeue_lost(run_id: int, attempt: int, *, why: str, note: str) -> bool:
    """Put a running run whose worker is gone back in the queue; its attempt is kept."""
    with transaction.atomic():
        lock_card_of_run(run_id)
        moved = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.QUEUED,
            queued_at=timezone.now(),
            worker_id="",
            error_kind=Run.ErrorKind.LOST,
            error_message=why,
        )
        if not moved:
            return False
        append_log(run_id, f"{why}; requeued", level=RunLog.Level.WARNING, attempt=attempt)
        mark_feature_queued(run_id, note)
        transaction.on_commit(partial(enqueue, run_id), robust=True)
    return True


def rescue_stale_running(older_than: timedelta | None = None) -> tuple[int, int]:
    """Runs whose worker stopped heartbeating: requeue while attempts remain, else fail clearly."""
    older_than = older_than or timedelta(seconds=settings.RUNWAY_RESCUE_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    stale = list(
        Run.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", "attempt", "max_attempts", "worker_id"
        )[:500]
    )
    requeued = failed = 0
    for run_id, attempt, max_attempts, worker_id in stale:
        silent = f"no heartbeat from {worker_id or 'its worker'} for {older_than.seconds} s"
        if attempt < max_attempts:
            requeued += requeue_lost(
                run_id,
                attempt,
                why=f"Rescued after attempt {attempt}: {silent}",
                note="Requeued: its worker stopped responding",
            )
        elif finish_failed(
            run_id,
            attempt,
            kind=Run.ErrorKind.LOST,
            message=f"Gave up after {attempt} attempts: {silent}. Check the workers, then Retry.",
            feature_note=f"Worker lost {attempt} times; check the workers, then Retry",
        ):
            failed += 1
    return requeued, failed
