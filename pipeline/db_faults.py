"""Database faults are transient: a restarting PostgreSQL must never fail a pipeline for good.

``OperationalError`` and ``InterfaceError`` (connection refused, reset, closed, "terminating
connection due to administrator command") mean the database could not answer, not that the
write was wrong. The worker retries such a write with backoff on a fresh connection for a
while; past that it leaves the run as it is (``running``, heartbeat going stale) for the
rescue sweep to requeue, which resumes after the last recorded step. It never marks a run
failed because the database was away.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")

DB_FAULTS = (OperationalError, InterfaceError)


def reset_connection() -> None:
    """Drop this thread's connection so the next query opens a new one (not inside a
    transaction someone else opened: its owner decides what happens to it)."""
    if connection.in_atomic_block:
        return
    with contextlib.suppress(*DB_FAULTS):
        connection.close()


def release_connection() -> None:
    """Give this thread's connection back (to the web pool, or closed) between the polls of a
    long-lived stream; inside a transaction its owner decides."""
    reset_connection()


def with_db_retry(
    call: Callable[[], T],
    *,
    what: str,
    interrupted: threading.Event | None = None,
    seconds: float | None = None,
) -> T:
    """`call()`, retried on a fresh connection while the database is unreachable.

    Backoff 0.5 s doubling to 5 s, for up to `seconds` (``RUNWAY_DB_RETRY_SECONDS``, 60). Raises
    the last DB fault after that, or at once when `interrupted` is set while waiting. Only for
    calls that are safe to repeat (each engine write is one transaction with a fence).
    """
    limit = settings.RUNWAY_DB_RETRY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + limit
    delay = 0.5
    waiter = interrupted or threading.Event()
    while True:
        try:
            return call()
        except DB_FAULTS as exc:
            reset_connection()
            if time.monotonic() + delay > deadline:
                raise
            logger.warning(
                "database unavailable while %s (retrying in %.1f s): %s", what, delay, exc
            )
            if waiter.wait(delay):
                raise
            delay = min(delay * 2, 5.0)
