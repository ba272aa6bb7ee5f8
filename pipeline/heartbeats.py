"""Run heartbeats from a worker process while its steps wait on a provider.

One daemon thread per process beats for every run the process is executing, so a step costs
nothing extra when it is fast and a slow step keeps its claim fresh. A beat that matches no row
means the run was cancelled or rescued from under us: the step is told to stop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from pipeline.models import Run

logger = logging.getLogger(__name__)


class _Heartbeater:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[int, tuple[int, threading.Event]] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, run_id: int, attempt: int) -> threading.Event:
        cancelled = threading.Event()
        with self._lock:
            self._runs[run_id] = (attempt, cancelled)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="run-heartbeat", daemon=True
                )
                self._thread.start()
        return cancelled

    def untrack(self, run_id: int) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def beat_now(self) -> None:
        with self._lock:
            runs = dict(self._runs)
        now = timezone.now()
        for run_id, (attempt, cancelled) in runs.items():
            still_ours = Run.objects.filter(
                pk=run_id, status=Run.Status.RUNNING, attempt=attempt
            ).update(heartbeat_at=now)
            if not still_ours:
                cancelled.set()

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(settings.RUNWAY_HEARTBEAT_SECONDS)
                self._wake.clear()
                try:
                    close_old_connections()
                    self.beat_now()
                except Exception:  # a database blip must not kill the heartbeat for good
                    logger.warning("run heartbeat failed", exc_info=True)
        finally:
            connection.close()


_heartbeater = _Heartbeater()


@contextlib.contextmanager
def heartbeating(run_id: int, attempt: int) -> Iterator[threading.Event]:
    """Keep the run's claim alive while the block runs; the event is set if the claim is lost."""
    cancelled = _heartbeater.track(run_id, attempt)
    try:
        yield cancelled
    finally:
        _heartbeater.untrack(run_id)
