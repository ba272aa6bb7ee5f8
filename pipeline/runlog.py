"""Append-only run logs. Lines are numbered per run; live viewers are told after commit."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from features.events import publish_on_commit, run_group
from pipeline.models import RunLog


def append_log(
    run_id: int,
    message: str,
    *,
    level: str = RunLog.Level.INFO,
    attempt: int = 0,
    data: dict[str, Any] | None = None,
) -> RunLog:
    # A rescued zombie and its successor may log at once; the unique (run, seq) index makes the
    # loser pick the next number instead of interleaving two lines under one number.
    for _ in range(5):
        try:
            with transaction.atomic():
                top = RunLog.objects.filter(run_id=run_id).aggregate(top=Max("seq"))["top"] or 0
                line = RunLog.objects.create(
                    run_id=run_id,
                    seq=top + 1,
                    level=level,
                    message=message[:5000],
                    attempt=attempt,
                    data=data or {},
                )
                publish_on_commit(
                    run_group(run_id), {"type": "run.log", "run_id": run_id, "seq": line.seq}
                )
                return line
        except IntegrityError:
            continue
    raise RuntimeError(f"could not number a log line for run {run_id}")
