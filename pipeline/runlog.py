"""Append-only run logs. Lines are numbered per run; live viewers are told after commit.

Lines often quote a model or a server: they are made storable (no NUL) before they are kept.

While a worker executes a run, its lines are buffered and written in one INSERT: inside the
transaction that completes (or fails, or requeues) the run, or just before a step that will
make people wait, so a slow step's log is live and a fast step costs no extra round trips.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from features.events import publish_on_commit, run_group
from pipeline.models import RunLog
from pipeline.storable import clip, storable

logger = logging.getLogger(__name__)
# One more write (SQL with %s placeholders, and its parameters) that a log flush may carry.
Statement = tuple[str, tuple[Any, ...] | list[Any]]
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

    def flush(self, *, along: Statement | None = None) -> int | None:
        """Write the pending lines; see :func:`flush_buffered` for `along`."""
        if not self.pending:
            return None
        lines, self.pending = self.pending, []
        return _insert(self.run_id, lines, along=along)


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


def flush_buffered(run_id: int, *, along: Statement | None = None) -> int | None:
    """Write the buffered lines now (call inside the transaction that should carry them).

    `along`: a data-modifying statement without a WITH clause of its own (the completion's
    outcome ``UPDATE``) that PostgreSQL runs in the same statement as the lines, one round
    trip for both. Returns its row count when it was carried; None when it was not (nothing
    buffered, another database, another run's buffer): the caller then runs it itself.
    """
    buffer = _buffer.get()
    if buffer is not None and buffer.run_id == run_id:
        return buffer.flush(along=along)
    return None


def _insert(run_id: int, lines: list[RunLog], *, along: Statement | None = None) -> int | None:
    # Numbers are taken at write time: a rescued zombie and its successor may log at once, and
    # the unique (run, seq) index makes the loser renumber instead of interleaving.
    if connection.vendor == "postgresql":
        return _insert_numbered(run_id, lines, along=along)
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
                return None
        except IntegrityError:
            continue
    raise RuntimeError(f"could not number log lines for run {run_id}")


def _insert_numbered(run_id: int, lines: list[RunLog], *, along: Statement | None) -> int | None:
    """PostgreSQL: number and insert the lines in one statement, with no savepoint.

    A line whose number another writer took meanwhile is skipped (ON CONFLICT DO NOTHING)
    rather than failing the transaction that carries it (a completion, say); then the lines
    that did go in are taken out again and the whole batch is numbered after the other
    writer's, so one writer's lines never interleave with another's. `along` rides with the
    first try only (a data-modifying CTE runs once, whatever the lines met); its row count
    is returned.
    """
    table = connection.ops.quote_name(RunLog._meta.db_table)
    # The table name comes from the model's meta; every value is a parameter.
    sql = f"""
        INSERT INTO {table} (run_id, seq, level, message, data, attempt, created_at)
        SELECT %s, top.n + line.ord, line.level, line.message, line.data, line.attempt,
               line.created_at
        FROM (SELECT COALESCE(MAX(seq), 0) AS n FROM {table} WHERE run_id = %s) AS top,
             unnest(%s::text[], %s::text[], %s::jsonb[], %s::integer[], %s::timestamptz[])
               WITH ORDINALITY AS line(level, message, data, attempt, created_at, ord)
        ON CONFLICT (run_id, seq) DO NOTHING
        RETURNING seq"""  # noqa: S608
    params: list[Any] = [
        run_id,
        run_id,
        [line.level for line in lines],
        [line.message for line in lines],
        [json.dumps(line.data) for line in lines],
        [line.attempt for line in lines],
        [line.created_at for line in lines],
    ]
    carried: int | None = None
    with connection.cursor() as cursor:
        for _ in range(5):
            if along is not None and carried is None:
                along_sql, along_params = along
                # Both statements are built from the models' meta; every value is a parameter.
                cursor.execute(
                    f"WITH line_rows AS ({sql}), along_rows AS ({along_sql} RETURNING 1) "  # noqa: S608
                    "SELECT (SELECT COUNT(*) FROM along_rows), "
                    "(SELECT COALESCE(array_agg(seq), '{}') FROM line_rows)",
                    [*params, *along_params],
                )
                carried, inserted = cursor.fetchone()
            else:
                cursor.execute(sql, params)
                inserted = [row[0] for row in cursor.fetchall()]
            if len(inserted) == len(lines):
                for line, seq in zip(lines, sorted(inserted), strict=True):
                    line.seq = seq
                publish_on_commit(
                    run_group(run_id), {"type": "run.log", "run_id": run_id, "seq": max(inserted)}
                )
                return carried
            if inserted:
                RunLog.objects.filter(run_id=run_id, seq__in=inserted).delete()
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
