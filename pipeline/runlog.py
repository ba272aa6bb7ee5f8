"""Append-only run logs. Lines are numbered per run; live viewers are told after commit.

Lines often quote a model or a server: they are made storable (no NUL) before they are kept.

While a worker executes a run, its lines are buffered and written in one INSERT: inside the
transaction that completes (or fails, or requeues) the run, or just before a step that will
make people wait, so a slow step's log is live and a fast step costs no extra round trips.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from features.events import publish_on_commit, run_group
from pipeline.models import RunLog
from pipeline.storable import clip, storable

logger = logging.getLogger(__name__)
_LEVELS: dict[str, int] = {
    RunLog.Level.DEBUG: logging.DEBUG,
    RunLog.Level.INFO: logging.INFO,
    RunLog.Level.WARNING: logging.WARNING,
    RunLog.Level.ERROR: logging.ERROR,
}


@dataclass
class LogBuffer:
    run_id: int
    attempt: int
    pending: list[RunLog] = field(default_factory=list)

    def add(self, message: str, level: str, data: dict[str, Any] | None, attempt: int) -> None:
        self.pending.append(
            RunLog(
                run_id=self.run_id,
                seq=0,
                level=level,
                message=clip(message, 5000),
                attempt=attempt or self.attempt,
                data=storable(data or {}),
                created_at=timezone.now(),
            )
        )

    def flush(self) -> None:
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        _insert(self.run_id, lines)


_buffer: ContextVar[LogBuffer | None] = ContextVar("runway_log_buffer", default=None)


@contextlib.contextmanager
def buffering(run_id: int, attempt: int) -> Iterator[LogBuffer]:
    """Buffer this run's lines for the block; whatever is left is written at the end."""
    buffer = LogBuffer(run_id, attempt)
    token = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(token)
        buffer.flush()


def flush_buffered(run_id: int) -> None:
    """Write the buffered lines now (call inside the transaction that should carry them)."""
    buffer = _buffer.get()
    if buffer is not None and buffer.run_id == run_id:
        buffer.flush()


def _insert(run_id: int, lines: list[RunLog]) -> None:
    # Numbers are taken at write time: a rescued zombie and its successor may log at once, and
    # the unique (run, seq) index makes the loser renumber instead of interleaving.
    for _ in range(5):
        try:
            with transaction.atomic():
                top = RunLog.objects.filter(run_id=run_id).aggregate(top=Max("seq"))["top"] or 0
                for offset, line in enumerate(lines, start=1):
                    line.seq = top + offset
                RunLog.objects.bulk_create(lines)
                publish_on_commit(
                    run_group(run_id), {"type": "run.log", "run_id": run_id, "seq": lines[-1].seq}
                )
                return
        except IntegrityError:
            continue
    raise RuntimeError(f"could not number log lines for run {run_id}")


def append_log(
    run_id: int,
    message: str,
    *,
    level: str = RunLog.Level.INFO,
    attempt: int = 0,
    data: dict[str, Any] | None = None,
) -> None:
    # The same line in the process's own log, so an operator can follow the run there too
    # (with RUNWAY_LOG_FORMAT=json, by its run_id).
    extra: dict[str, Any] = {"run_id": run_id}
    if attempt:
        extra["attempt"] = attempt
    logger.log(_LEVELS.get(level, logging.INFO), "%s", message[:500], extra=extra)
    buffer = _buffer.get()
    if buffer is not None and buffer.run_id == run_id:
        buffer.add(message, level, data, attempt)
        return
    line = RunLog(
        run_id=run_id,
        seq=0,
        level=level,
        message=clip(message, 5000),
        attempt=attempt,
        data=storable(data or {}),
        created_at=timezone.now(),
    )
    _insert(run_id, [line])
