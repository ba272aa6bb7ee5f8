"""Run heartbeats from a worker process while its steps wait on a provider.

One daemon thread per process beats for every run the process is executing, so a step costs
nothing extra when it is fast and a slow step keeps its claim fresh. A beat that matches no row
means the run was cancelled or rescued from under us: the step is told to stop. A step that
outlives its deadline (its timeout plus ``RUNWAY_STEP_GRACE_SECONDS``) is told to stop, and
the thread ends its run at once as a transient failure (requeued with backoff, or failed when
its retries are used up), fenced by the attempt: a hung provider call can never keep a run
"running", and whatever it returns later is discarded.

Between beats the same thread looks every RUNWAY_CANCEL_CHECK_SECONDS (one primary-key query
for all the process's runs) whether a run was stopped, so Stop frees the worker within seconds,
not at the next beat: the cancel event it sets interrupts the provider's call (its HTTP stream
or its process group).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from pipeline.models import Run

logger = logging.getLogger(__name__)


@dataclass
class Claim:
    """What the executor and the heartbeat thread share about one run in flight."""

    run_id: int
    attempt: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None
    timed_out: bool = False
    # What a timeout of the current step means for the run (engine.retry_later's arguments).
    step_index: int = 0
    retry_count: int = 0
    message: str = ""

    def arm(
        self, seconds: float, *, step_index: int = 0, retry_count: int = 0, message: str = ""
    ) -> None:
        """The current step must finish within `seconds` (monotonic clock); past that its run
        is ended as a transient error: `message`, counted against `retry_count`."""
        self.deadline = time.monotonic() + seconds
        self.timed_out = False
        self.step_index, self.retry_count = step_index, retry_count
        self.message = message or f"step {step_index + 1} timed out"
        _heartbeater.wake()


class _Heartbeater:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[int, Claim] = {}
        self._thread: threading.Thread | None = None
        self._tick = threading.Event()  # set when a deadline is armed: look again with it in view

    def track(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.run_id] = claim
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="run-heartbeat", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self._tick.set()

    def untrack(self, run_id: int) -> None:
        with self._lock:
            self._claims.pop(run_id, None)

    def _live_claims(self) -> list[Claim]:
        """The claims in flight, after telling those past their deadline to stop."""
        with self._lock:
            claims = list(self._claims.values())
        live, expired = [], []
        for claim in claims:
            if claim.deadline is not None and time.monotonic() > claim.deadline:
                if not claim.timed_out:
                    claim.timed_out = True
                    claim.cancelled.set()
                    expired.append(claim)
            elif not claim.cancelled.is_set():
                live.append(claim)
        for claim in expired:
            _time_out(claim)
        return live

    def beat_now(self) -> None:
        now = timezone.now()
        for claim in self._live_claims():
            still_ours = Run.objects.filter(
                pk=claim.run_id, status=Run.Status.RUNNING, attempt=claim.attempt
            ).update(heartbeat_at=now)
            if not still_ours:
                claim.cancelled.set()

    def check_now(self) -> None:
        """Tell the steps of runs stopped, rescued or past their deadline to stop (no writes)."""
        claims = self._live_claims()
        if not claims:
            return
        running = set(
            Run.objects.filter(
                pk__in=[c.run_id for c in claims], status=Run.Status.RUNNING
            ).values_list("pk", "attempt")
        )
        for claim in claims:
            if (claim.run_id, claim.attempt) not in running:
                claim.cancelled.set()

    def _next_wait(self, last_look: float) -> float:
        """Seconds until the next look (cancel check or beat) or the nearest step deadline."""
        with self._lock:
            deadlines = [
                c.deadline for c in self._claims.values() if c.deadline and not c.timed_out
            ]
        now = time.monotonic()
        every = min(settings.RUNWAY_CANCEL_CHECK_SECONDS, settings.RUNWAY_HEARTBEAT_SECONDS)
        wait = every - (now - last_look)
        if deadlines:
            wait = min(wait, min(deadlines) - now + 0.05)
        return max(wait, 0.0)

    def _deadline_passed(self) -> bool:
        with self._lock:
            return any(
                c.deadline is not None and not c.timed_out and time.monotonic() > c.deadline
                for c in self._claims.values()
            )

    def _loop(self) -> None:
        last_beat = last_look = time.monotonic()
        while True:
            self._tick.wait(self._next_wait(last_look))
            self._tick.clear()
            now = time.monotonic()
            every = min(settings.RUNWAY_CANCEL_CHECK_SECONDS, settings.RUNWAY_HEARTBEAT_SECONDS)
            if now - last_look < every and not self._deadline_passed():
                continue  # woken by a newly armed deadline: wait again with it in view
            last_look = now
            with self._lock:
                idle = not self._claims
            try:
                if idle:
                    connection.close()  # hold no database connection while nothing runs
                    continue
                close_old_connections()
                if now - last_beat >= settings.RUNWAY_HEARTBEAT_SECONDS:
                    last_beat = now
                    self.beat_now()
                else:
                    self.check_now()
            except Exception:  # a database blip must not kill the heartbeat for good
                logger.warning("run heartbeat failed", exc_info=True)
                connection.close()


def _time_out(claim: Claim) -> None:
    """The step outlived its deadline: end the run's attempt now, as a transient error."""
    from pipeline import engine

    try:
        ended = engine.retry_later(
            claim.run_id,
            claim.attempt,
            step_index=claim.step_index,
            retry_count=claim.retry_count,
            message=claim.message,
            retry_after=None,
        )
    except Exception:  # the database is away: rescue will requeue the silent run instead
        logger.warning("could not time out run %s", claim.run_id, exc_info=True)
        return
    if ended:
        logger.warning("run %s: %s", claim.run_id, claim.message)


_heartbeater = _Heartbeater()


@contextlib.contextmanager
def heartbeating(run_id: int, attempt: int) -> Iterator[Claim]:
    """Keep the run's claim alive while the block runs; `cancelled` is set if it is lost."""
    claim = Claim(run_id, attempt)
    _heartbeater.track(claim)
    try:
        yield claim
    finally:
        _heartbeater.untrack(run_id)
