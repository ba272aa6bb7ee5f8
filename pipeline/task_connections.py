"""A worker process keeps its database connection from one task to the next.

Celery's Django fixup closes every database connection before and after each task unless
``CELERY_DB_REUSE_MAX`` is set (celery/celery#9824 reverted its use of ``CONN_MAX_AGE``), so
each stage run paid for a new PostgreSQL connection: a server process forked, authenticated
and configured, then torn down, about a fifth of a worker's time on the hot path (py-spy,
`make bench`'s throughput run). The settings set ``CELERY_DB_REUSE_MAX`` and this module gives
tasks the lifecycle Django gives requests instead (``close_old_connections`` at start and end,
as on ``request_started``/``request_finished``): a connection lives for ``CONN_MAX_AGE``
(60 s), one left in a broken state by a failed task is closed, and with
``CONN_HEALTH_CHECKS`` one the server dropped (a restart) is replaced before the next task's
first query rather than failing it (Django checks as a transaction begins, outside it).
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections


def _eager(task: Any) -> bool:
    # An eager task (tests, `.apply()`) runs inside its caller's transaction, which a close
    # would break; the fixup skips those too.
    return bool(getattr(getattr(task, "request", None), "is_eager", False))


@task_prerun.connect
def _connection_for_task(sender: Any = None, **_: Any) -> None:
    if not _eager(sender):
        close_old_connections()


@task_postrun.connect
def _connection_after_task(sender: Any = None, **_: Any) -> None:
    if not _eager(sender):
        close_old_connections()
