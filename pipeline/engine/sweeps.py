"""Sweeps: re-dispatch runs whose message was lost, rescue runs whose worker died, release
waiting runs whose wait is over (a safety net: the engine releases them as it goes).

They need no single beat. Beat schedules them, and every worker's main process runs them too
when they are due (``pipeline.worker_signals``), so recovery goes on while beat is down. A
lease row (``Sweep``) lets one sweeper a interval do the work, and the work itself is safe
however many run at once: every requeue and re-send is a conditional UPDATE that re-checks
what the scan saw (still overdue, heartbeat still stale) and whose row count decides whether
anything is logged or sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from features import notices
from pipeline.engine import transitions
from pipeline.engine.card_state import engine_transaction
from pipeline.engine.locks import lock_card_of_run
from pipeline.engine.runs import enqueue
from pipeline.engine.waiting import release_stale
from pipeline.engine.worker import give_up_lost
from pipeline.health import broker_backlog
from pipeline.health import check_sweeps as sweep_status
from pipeline.models import Run, RunLog, Sweep
from pipeline.runlog import append_log

Status = Run.Status
RECOVERY = "recovery"  # the Sweep row's name (pipeline.health reads it too)

__all__ = [
    "dispatch_stale_queued",
    "requeue_lost",
    "rescue_stale_running",
    "sweep_if_due",
    "sweep_status",
]


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
            if not transitions.stamp_dispatch(run_id, now=now, due_before=cutoff):
                continue  # claimed, or re-sent by another sweeper since the scan
            append_log(
                run_id, "Re-dispatched: queued with no worker claim", level=RunLog.Level.WARNING
            )
            transaction.on_commit(partial(enqueue, run_id), robust=True)
            sent += 1
    return sent


def requeue_lost(
    run_id: int,
    attempt: int,
    *,
    why: str,
    note: str,
    stale_before: datetime | None = None,
) -> bool:
    """Put a running run whose worker is gone back in the queue; its attempt is kept.

    With `stale_before` (the rescue sweep) only while its heartbeat is still older than that,
    checked in the same UPDATE: a heartbeat that landed after the scan keeps the run where it
    is, so a step that is still being paid for never runs twice. Without it, an operator
    declared the worker dead.
    """
    with engine_transaction():
        feature = lock_card_of_run(run_id)
        moved = transitions.requeue(
            run_id,
            attempt,
            kind=Run.ErrorKind.LOST,
            message=why,
            note=note,
            stale_before=stale_before,
        )
        if not moved:
            return False
        append_log(run_id, f"{why}; requeued", level=RunLog.Level.WARNING, attempt=attempt)
        if stale_before is not None:  # the sweep found it silent, not a person's Rescue
            notices.emit(
                notices.WORKER_GONE,
                workspace_id=feature.workspace_id,
                feature_id=feature.pk,
                run_id=run_id,
                text=f"{why}; the run was requeued",
            )
        transaction.on_commit(partial(enqueue, run_id), robust=True)
    return True


def rescue_stale_running(older_than: timedelta | None = None) -> tuple[int, int]:
    """Runs whose worker stopped heartbeating: requeue while attempts remain, else fail clearly.
    Returns (requeued, failed)."""
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
                stale_before=cutoff,
            )
        elif give_up_lost(run_id, attempt, stale_before=cutoff):
            failed += 1
    return requeued, failed


def sweep_if_due(by: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """Run both sweeps if no sweeper has in the last ``RUNWAY_SWEEP_SECONDS``; `by` names the
    sweeper (beat, a worker). Returns what they did, or None when it was not due.

    The lease is one conditional UPDATE on the ``Sweep`` row, so of many sweepers at once one
    wins; /healthz reads the same row to say when the sweeps last ran.
    """
    now = now or timezone.now()
    interval = timedelta(seconds=settings.RUNWAY_SWEEP_SECONDS)
    # A little early, so a sweeper whose clock ticks just before the interval ends is not
    # skipped for a whole extra interval.
    due_before = now - interval * 0.8
    if not Sweep.objects.filter(name=RECOVERY).exists():
        try:
            with transaction.atomic():
                Sweep.objects.create(name=RECOVERY)
        except IntegrityError:
            pass  # another sweeper created it first
    leased = (
        Sweep.objects.filter(name=RECOVERY)
        .filter(Q(started_at__isnull=True) | Q(started_at__lt=due_before))
        .update(started_at=now, by=by[:200])
    )
    if not leased:
        return None
    dispatched = dispatch_stale_queued()
    requeued, failed = rescue_stale_running()
    released = release_stale()
    result = {
        "dispatched": dispatched,
        "requeued": requeued,
        "failed": failed,
        "released": released,
    }
    Sweep.objects.filter(name=RECOVERY, started_at=now).update(
        finished_at=timezone.now(), result=result
    )
    return result
