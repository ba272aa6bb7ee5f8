"""Creating runs and sending them to the workers (after commit)."""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from features.models import Feature, Stage
from pipeline.engine import transitions
from pipeline.engine.card_state import touch
from pipeline.engine.errors import AlreadyRunning
from pipeline.engine.planning import runnable_recipe
from pipeline.models import Batch, Run

Status = Run.Status
logger = logging.getLogger(__name__)


def enqueue(run_id: int, *, countdown: float | None = None) -> None:
    """Send the run to the workers. Never raises: it runs after commit, when the run is already
    stored as queued, so a broker that cannot be reached costs a warning, and the dispatch sweep
    sends the run once it can (RUNWAY_DISPATCH_AFTER_SECONDS)."""
    from pipeline.tasks import execute_run

    try:
        # A stable task id lets Stop revoke every copy of the message, however often it was sent.
        if countdown:
            execute_run.apply_async((run_id,), task_id=f"run-{run_id}", countdown=countdown)
        else:
            execute_run.apply_async((run_id,), task_id=f"run-{run_id}")
    except Exception as exc:  # any broker failure: kombu's, redis-py's, a socket's
        logger.warning(
            "run %s is queued but not sent (%s); the dispatch sweep sends it when the broker "
            "answers",
            run_id,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            extra={"run_id": run_id},
        )


def revoke(run_ids: list[int]) -> None:
    """Revoke the runs' queued messages (after commit). Best effort: a message that still
    arrives finds its run cancelled and does nothing."""
    from config.celery import app

    try:
        app.control.revoke([f"run-{pk}" for pk in run_ids])
    except Exception:
        logger.warning("could not revoke %s", run_ids, exc_info=True)


def create_run(
    feature: Feature,
    stage: Stage,
    *,
    pipeline_next: list[str],
    parent: Run | None,
    user: User | None,
    status: str = Status.QUEUED,
    note: str = "",
    carry_from: Run | None = None,
    guard: bool = True,
    trigger: str = Run.Trigger.PERSON,
    batch_id: int | None = None,
) -> Run:
    """A new run of `stage` for the card, queued (sent after commit), awaiting approval or
    waiting for dependencies, with `note` saying why. `carry_from` is a failed run whose
    succeeded steps this one resumes after; `batch_id` the batch it belongs to. Raises
    AlreadyRunning when the card has an active run."""
    recipe = runnable_recipe(stage)
    assert recipe is not None, "callers plan only runnable stages"
    now = timezone.now()
    carried: dict[str, Any] = {}
    step_index = 0
    if carry_from is not None and carry_from.error_kind != Run.ErrorKind.GATE:
        # Resume from the failed step: the steps that already succeeded are not paid for twice
        # (the executor re-checks each against the recipe as it is now).
        carried = {"steps": list(carry_from.result.get("steps", []))}
        step_index = len(carried["steps"])
    # A person's request may race another launch: a savepoint turns the unique index's refusal
    # into a clear answer. Completion creates the next run under the card's lock and without.
    savepoint = transaction.atomic() if guard else contextlib.nullcontext()
    try:
        with savepoint:
            run = transitions.create(
                workspace_id=feature.workspace_id,
                feature=feature,
                stage=stage,
                status=status,
                parent_run=parent,
                pipeline_next=pipeline_next,
                pipeline_index=(parent.pipeline_index + 1)
                if parent is not None and parent.stage_id != stage.pk
                else 1,
                triggered_by=user,
                trigger=trigger,
                card_note=note[:500],
                max_attempts=settings.RUNWAY_MAX_ATTEMPTS,
                created_at=now,
                queued_at=now if status == Status.QUEUED else None,
                step_total=getattr(stage, "step_count", 0) or recipe.steps.count(),
                step_index=step_index,
                result=carried,
                provider=recipe.provider or feature.workspace.default_provider,
                model=recipe.model or feature.workspace.default_model,
                batch_id=batch_id,
            )
    except IntegrityError as exc:
        raise AlreadyRunning(
            f"“{feature.title}” already has a pipeline running; stop it or wait for it to end."
        ) from exc
    touch(feature)  # the caller's instance shows the derived status too
    if batch_id is not None:
        # A batch that had ended is running again (a Retry of one of its cards, say).
        Batch.objects.filter(pk=batch_id, finished_at__isnull=False).update(
            finished_at=None, stopped_at=None
        )
    if status == Status.QUEUED:
        transaction.on_commit(partial(enqueue, run.pk), robust=True)
    return run
