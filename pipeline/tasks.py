"""Celery tasks: thin wrappers that pass primary keys to the engine."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from pipeline import bulk, engine, executor, retention
from pipeline.worker_signals import record_worker_heartbeat

logger = logging.getLogger(__name__)

# A database that is restarting refuses the claim itself: the message comes back this much
# later (growing), rather than being dropped and left to the dispatch sweep.
CLAIM_RETRY_SECONDS = 2.0


@shared_task(name="pipeline.execute_run", bind=True, acks_late=True, reject_on_worker_lost=True)
def execute_run(self: Task, run_id: int) -> None:
    try:
        executor.execute_run(run_id, f"{self.request.hostname or 'worker'}/{os.getpid()}")
    except (OperationalError, InterfaceError) as exc:
        # Nothing was claimed (or the claim rolled back): send the message again later.
        logger.warning("database unavailable for run %s: %s", run_id, exc)
        countdown = min(CLAIM_RETRY_SECONDS * 2**self.request.retries, 60)
        raise self.retry(exc=exc, countdown=countdown, max_retries=None) from exc


@shared_task(name="pipeline.sweep")
def sweep() -> dict[str, Any] | None:
    """Beat's recovery sweeps (dispatch and rescue), when no other sweeper just ran them."""
    result = engine.sweep_if_due("beat")
    if result is not None:
        result["bulk_resent"] = bulk.resume_stale()
    return result


@shared_task(name="pipeline.process_bulk_action", acks_late=True, reject_on_worker_lost=True)
def process_bulk_action(job_id: int) -> None:
    """One chunk of a bulk action's runs; the next chunk is a new message, so a long job never
    holds a worker and a dead one loses at most the item it was on (rolled back, redone)."""
    if bulk.process_chunk(job_id):
        bulk.send(job_id)


# The tasks older beat schedules send; kept so their messages still do the work.
@shared_task(name="pipeline.dispatch_stale_queued")
def dispatch_stale_queued() -> int:
    return engine.dispatch_stale_queued()


@shared_task(name="pipeline.rescue_stale_running")
def rescue_stale_running() -> tuple[int, int]:
    return engine.rescue_stale_running()


@shared_task(name="pipeline.prune_history")
def prune_history() -> dict[str, int]:
    """Daily: delete run logs, health-check results and dead workers' rows past their age."""
    return retention.prune_history()


__all__ = [
    "dispatch_stale_queued",
    "execute_run",
    "process_bulk_action",
    "prune_history",
    "record_worker_heartbeat",
    "rescue_stale_running",
    "sweep",
]
