"""Worker heartbeats: each worker's main process writes its WorkerHeartbeat row every
RUNWAY_HEARTBEAT_SECONDS (5 s).

A thread in the main process (not a task) does it, so a worker whose pool is busy with long
steps still shows as alive; a killed worker's row goes stale after RUNWAY_WORKER_STALE_SECONDS
(15 s), and the board says "no worker" at its next poll. The same thread runs the recovery
sweeps when they are due (engine.sweep_if_due), so a worker recovers another's run even while
beat is down.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)
_stop = threading.Event()
_state: dict[str, Any] = {}


def record_worker_heartbeat(worker_id: str, concurrency: int) -> None:
    from pipeline.models import Run, WorkerHeartbeat

    running = list(
        Run.objects.filter(
            status=Run.Status.RUNNING, worker_id__startswith=f"{worker_id}/"
        ).values_list("pk", flat=True)[:100]
    )
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": concurrency,
            "last_seen": timezone.now(),
            "current_run_ids": running,
            "stopped_at": None,
        },
        create_defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": concurrency,
            "started_at": timezone.now(),
            "last_seen": timezone.now(),
            "current_run_ids": running,
        },
    )


def _loop(worker_id: str, concurrency: int) -> None:
    from pipeline import bulk, engine

    while True:
        try:
            close_old_connections()
            record_worker_heartbeat(worker_id, concurrency)
            if engine.sweep_if_due(worker_id) is not None:
                bulk.resume_stale()  # under the same lease: one sweeper re-sends stale jobs
        except Exception:  # keep beating through a database restart
            logger.warning("worker heartbeat failed", exc_info=True)
        finally:
            # This thread lives in the prefork parent: a connection left open here would be
            # inherited by every pool child forked after a crash.
            connection.close()
        if _stop.wait(settings.RUNWAY_HEARTBEAT_SECONDS):
            return


def _runs_pipelines(sender: Any) -> bool:
    """Whether this worker consumes the run queue: the health-check pool does not, and must not
    count as a worker that will start runs."""
    queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    consumed = set(getattr(queues, "consume_from", None) or {})
    return not consumed or settings.CELERY_TASK_DEFAULT_QUEUE in consumed


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    if not _runs_pipelines(sender):
        return
    worker_id = str(getattr(sender, "hostname", None) or socket.gethostname())
    concurrency = int(getattr(getattr(sender, "controller", None), "concurrency", 1) or 1)
    _state["worker_id"] = worker_id
    _stop.clear()
    threading.Thread(
        target=_loop, args=(worker_id, concurrency), name="worker-heartbeat", daemon=True
    ).start()


@worker_shutdown.connect
def _mark_stopped(**_: Any) -> None:
    _stop.set()
    worker_id = _state.get("worker_id")
    if not worker_id:
        return
    from pipeline.models import WorkerHeartbeat

    try:
        WorkerHeartbeat.objects.filter(worker_id=worker_id).update(stopped_at=timezone.now())
    except Exception:
        logger.warning("could not mark worker %s stopped", worker_id, exc_info=True)
