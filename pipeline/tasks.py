"""Celery tasks: thin wrappers that pass primary keys to the engine."""

from __future__ import annotations

import os

from celery import Task, shared_task

from pipeline import engine, executor
from pipeline.worker_signals import record_worker_heartbeat


@shared_task(name="pipeline.execute_run", bind=True, acks_late=True, reject_on_worker_lost=True)
def execute_run(self: Task, run_id: int) -> None:
    executor.execute_run(run_id, f"{self.request.hostname or 'worker'}/{os.getpid()}")


@shared_task(name="pipeline.dispatch_stale_queued")
def dispatch_stale_queued() -> int:
    return engine.dispatch_stale_queued()


@shared_task(name="pipeline.rescue_stale_running")
def rescue_stale_running() -> tuple[int, int]:
    return engine.rescue_stale_running()


__all__ = [
    "dispatch_stale_queued",
    "execute_run",
    "record_worker_heartbeat",
    "rescue_stale_running",
]
