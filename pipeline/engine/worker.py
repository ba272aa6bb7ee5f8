"""The worker's side of a run: claim (fenced by ``attempt``), progress, retry and failure.

Every write after the claim is guarded by ``status=running AND attempt=N``: a run that was
cancelled or rescued from under a worker ignores that worker's late writes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from features import events, notices
from features.models import Feature
from pipeline.engine import transitions
from pipeline.engine.admission import admission_refusal, defer
from pipeline.engine.card_state import engine_transaction
from pipeline.engine.locks import lock_card_for_claim, lock_card_of_run
from pipeline.engine.runs import enqueue
from pipeline.engine.steps import StepResult
from pipeline.engine.trees import run_ended
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log, flush_buffered
from pipeline.storable import clip, storable_text

# A countdown message may arrive a little before the backoff it waits for has passed.
CLAIM_EARLY = timedelta(seconds=1)
Status = Run.Status


def claim_run(run_id: int, worker_id: str) -> Run | None:
    """Take a queued run, or take over a running one whose worker stopped heartbeating
    (``RUNWAY_RESCUE_AFTER_SECONDS``), so workers recover each other without beat.

    The common case is two statements: lock the card (and the workspace's admission lock),
    then one UPDATE … RETURNING that checks the backoff and admission and claims. The returned
    run carries its card (``run.feature``). None when there is nothing to take: another worker
    holds it, it is finished (a duplicate delivery), its backoff has not passed, or the
    workspace has no free slot or budget (the run is deferred until a slot frees).
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.RUNWAY_RESCUE_AFTER_SECONDS)
    with engine_transaction():
        card = lock_card_for_claim(run_id)
        if card is None:
            return None
        # After the card's lock: a Stop that committed while we waited is seen here.
        run = transitions.claim_admitted(
            run_id,
            worker_id=worker_id,
            now=now,
            not_before=now + CLAIM_EARLY,
            workspace_id=card.workspace_id,
        )
        if run is None:
            run = _claim_otherwise(run_id, card, worker_id, now=now, stale_before=stale_before)
        if run is not None:
            run.feature = card
    return run


def _claim_otherwise(
    run_id: int, card: Feature, worker_id: str, *, now: datetime, stale_before: datetime
) -> Run | None:
    """Why the run could not simply be claimed: a takeover of a silent worker's run (claimed
    here), a duplicate delivery or a finished run, a backoff, or a refusal (deferred)."""
    row = (
        Run.objects.filter(pk=run_id)
        .values("status", "attempt", "max_attempts", "heartbeat_at", "next_attempt_at")
        .first()
    )
    if row is None:
        return None
    if row["status"] == Status.QUEUED:
        # A copy of the message (dispatch sweep, redelivery) must not cut a backoff short.
        due = row["next_attempt_at"]
        if due is not None and due > now + CLAIM_EARLY:
            return None
        refusal = admission_refusal(run_id, now)
        if refusal is not None:
            defer(run_id, *refusal, now=now, feature_id=card.pk)
        return None
    if row["status"] != Status.RUNNING:
        return None
    beat = row["heartbeat_at"]
    if beat is None or beat >= stale_before:
        return None  # its worker is alive: a duplicate delivery
    if row["attempt"] >= row["max_attempts"]:
        give_up_lost(run_id, row["attempt"], stale_before=stale_before)
        return None
    claimed = transitions.claim(
        run_id,
        worker_id=worker_id,
        now=now,
        not_before=now + CLAIM_EARLY,
        stale_before=stale_before,
        feature_id=card.pk,
    )
    if not claimed:
        return None
    append_log(
        run_id,
        f"Taken over by {worker_id}: attempt {row['attempt']} stopped heartbeating",
        level=RunLog.Level.WARNING,
    )
    return Run.objects.get(pk=run_id)


def still_running(run_id: int, attempt: int) -> bool:
    return Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).exists()


def record_step(run_id: int, attempt: int, steps: list[StepResult], usage: dict[str, Any]) -> bool:
    """Keep a finished step's output on the run so a retry resumes after it. False: not ours."""
    run = Run.objects.only("result").get(pk=run_id)
    result = dict(run.result)
    result["steps"] = [s.as_dict() for s in steps]
    with transaction.atomic():
        ours = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            result=result,
            step_index=len(steps),
            heartbeat_at=timezone.now(),
            **transitions.usage_updates(usage),
        )
        if ours:
            flush_buffered(run_id)
    return bool(ours)


def finish_failed(run_id: int, attempt: int, *, kind: str, message: str, feature_note: str) -> bool:
    # A server's error text may hold a NUL: stored as is, it would fail this very write and
    # leave the run running, to be rescued and sent the same failing request again.
    message, feature_note = storable_text(message), clip(feature_note, 500)
    with engine_transaction():
        feature = lock_card_of_run(run_id)
        if not transitions.fail(run_id, attempt, kind=kind, message=message, note=feature_note):
            return False
        append_log(run_id, message, level=RunLog.Level.ERROR, attempt=attempt)
        flush_buffered(run_id)
        run_ended(run_id)
        _failed(feature, run_id, feature_note)
        events.toast_on_commit(
            feature.workspace_id,
            f"“{feature.title}”: {feature_note}",
            level="error",
            feature_id=feature.pk,
            run_id=run_id,
        )
    return True


def _failed(feature: Feature, run_id: int, note: str) -> None:
    notices.emit(
        notices.RUN_FAILED,
        workspace_id=feature.workspace_id,
        feature_id=feature.pk,
        run_id=run_id,
        text=note,
    )


def give_up_lost(run_id: int, attempt: int, *, stale_before: datetime) -> bool:
    """A run whose worker went silent on its last attempt fails with a message to act on."""
    silent = f"no heartbeat for {settings.RUNWAY_RESCUE_AFTER_SECONDS} s"
    with engine_transaction():
        feature = lock_card_of_run(run_id)
        message = f"Gave up after {attempt} attempts: {silent}. Check the workers, then Retry."
        note = f"Worker lost {attempt} times; check the workers, then Retry"
        if not transitions.fail_stale(
            run_id, attempt=attempt, stale_before=stale_before, message=message, note=note
        ):
            return False
        append_log(run_id, message, level=RunLog.Level.ERROR, attempt=attempt)
        run_ended(run_id)
        _failed(feature, run_id, note)
        events.toast_on_commit(
            feature.workspace_id,
            f"“{feature.title}”: {note}",
            level="error",
            feature_id=feature.pk,
            run_id=run_id,
        )
    return True


def fail_run(run_id: int, attempt: int, message: str) -> bool:
    """A permanent error: the run fails now and the chain stops with a message to act on."""
    return finish_failed(
        run_id,
        attempt,
        kind=Run.ErrorKind.PERMANENT,
        message=message,
        feature_note=f"Failed: {message}",
    )


def backoff_seconds(failures: int, retry_after: float | None) -> float:
    base = float(settings.RUNWAY_RETRY_BASE_SECONDS)
    delay = base * (2 ** (failures - 1)) + random.uniform(0, base / 2)  # noqa: S311 - jitter
    return max(delay, retry_after or 0.0)


def retry_later(
    run_id: int,
    attempt: int,
    *,
    step_index: int,
    retry_count: int,
    message: str,
    retry_after: float | None,
) -> bool:
    """A transient error: requeue with backoff while the step has retries left, else fail."""
    message = storable_text(message)
    run = Run.objects.only("result", "max_attempts").get(pk=run_id)
    failures = dict(run.result.get("failures", {}))
    count = int(failures.get(str(step_index), 0)) + 1
    if count > retry_count or attempt >= run.max_attempts:
        return finish_failed(
            run_id,
            attempt,
            kind=Run.ErrorKind.TRANSIENT,
            message=f"Gave up after {count} attempts of step {step_index + 1}: {message}",
            feature_note=f"Failed after retries: {message}",
        )
    failures[str(step_index)] = count
    delay = backoff_seconds(count, retry_after)
    now = timezone.now()
    next_at = now + timedelta(seconds=delay)
    with engine_transaction():
        lock_card_of_run(run_id)
        requeued = transitions.requeue(
            run_id,
            attempt,
            kind=Run.ErrorKind.TRANSIENT,
            message=f"{message} — retry {count} of {retry_count} at {next_at:%H:%M:%S} UTC",
            note=f"Retrying at {next_at:%H:%M:%S} UTC after: {message}",
            next_attempt_at=next_at,
            result={**run.result, "failures": failures},
        )
        if not requeued:
            return False
        append_log(
            run_id,
            f"Transient error: {message}; retry {count}/{retry_count} in {delay:.1f} s",
            level=RunLog.Level.WARNING,
            attempt=attempt,
        )
        flush_buffered(run_id)
        transaction.on_commit(partial(enqueue, run_id, countdown=delay), robust=True)
    return True
