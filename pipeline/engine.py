"""The pipeline engine: every state change of a run, each in one transaction.

Invariants (DESIGN.md, "The engine"):

* at most one active run per feature (partial unique index), so concurrent launches make one;
* a run is claimed by a conditional UPDATE that increments ``attempt``, the fencing token every
  later write of that execution must match, so a rescued zombie can never write;
* completion saves the result and artifacts, evaluates gates, moves the card and creates the
  next run (``parent_run`` unique) in one transaction; enqueue and events go out after commit,
  so the next step can never start before the previous result is stored.

The step loop that talks to providers lives in ``pipeline.executor``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from features import events
from features.actions import blocking_dependencies, insert_into_column, unblock_dependents
from features.models import Artifact, Dependency, Feature, Stage, StageTransition, Workspace
from pipeline.health import broker_backlog
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log, flush_buffered
from skills.gates import ArtifactView, GateSpec, blocking_failures, evaluate
from skills.models import Skill, StageRecipe

logger = logging.getLogger(__name__)

Status = Run.Status
# A countdown message may arrive a little before the backoff it waits for has passed.
CLAIM_EARLY = timedelta(seconds=1)
# How soon a run refused for lack of a slot, or for the budget, is looked at again.
ADMISSION_RETRY_SECONDS = 2.0
BUDGET_RETRY_SECONDS = 60.0
Automation = StageRecipe.Automation
OnFail = StageRecipe.OnFail


class EngineError(Exception):
    """A request the engine refuses, with a message a person can act on."""

    code = "invalid"


class AlreadyRunning(EngineError):
    code = "already_running"


class NothingToRun(EngineError):
    code = "nothing_to_run"


@dataclass(frozen=True)
class StepResult:
    """What one recipe step produced, as the executor hands it to completion."""

    skill: str
    version: int
    output: str
    artifact_name: str
    text: str
    data: dict[str, Any]
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "skill": self.skill,
            "version": self.version,
            "output": self.output,
            "artifact": self.artifact_name,
            "text": self.text,
            "data": self.data,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StepResult:
        return cls(
            skill=raw["skill"],
            version=raw["version"],
            output=raw["output"],
            artifact_name=raw["artifact"],
            text=raw["text"],
            data=raw.get("data") or {},
            metrics=raw.get("metrics") or {},
        )


# --- Planning -------------------------------------------------------------------------------


def board_stages(workspace_id: int, board: str) -> list[Stage]:
    """The board's stages in order, each with its recipe, step count and how many of its
    skills nobody vetted (one query)."""
    return list(
        Stage.objects.filter(workspace_id=workspace_id, board=board)
        .select_related("recipe")
        .annotate(
            step_count=Count("recipe__steps", distinct=True),
            untrusted_count=Count(
                "recipe__steps",
                filter=~Q(recipe__steps__skill__trust=Skill.Trust.VETTED),
                distinct=True,
            ),
        )
        .order_by("position")
    )


def runnable_recipe(stage: Stage) -> StageRecipe | None:
    """The stage's recipe if there is automated work to do in it."""
    recipe: StageRecipe | None = getattr(stage, "recipe", None)
    steps = getattr(stage, "step_count", None)
    if steps is None and recipe is not None:
        steps = recipe.steps.count()
    if recipe is None or not recipe.enabled or not steps:
        return None
    return recipe


def plan_from(workspace: Workspace, stages: list[Stage], start: Stage) -> list[Stage]:
    """The stages a pipeline starting at `start` runs, in order (start included).

    The chain halts at the workspace's stop stage (when it lies ahead), at a stage with no
    automated recipe or a manual one, or at the end of the board.
    """
    index = next(i for i, s in enumerate(stages) if s.pk == start.pk)
    plan = [start]
    if workspace.automation_mode == Workspace.AutomationMode.MANUAL:
        return plan
    stop_position: int | None = None
    stop = workspace.stop_stage
    if (
        workspace.automation_mode == Workspace.AutomationMode.TO_STOP_STAGE
        and stop is not None
        and stop.board == start.board
        and stop.position > start.position
    ):
        stop_position = stop.position
    for stage in stages[index + 1 :]:
        if stop_position is not None and stage.position >= stop_position:
            break
        recipe = runnable_recipe(stage)
        if recipe is None or recipe.automation == Automation.MANUAL:
            break
        plan.append(stage)
    return plan


def untrusted_skills(recipe: StageRecipe) -> list[str]:
    return list(
        recipe.steps.exclude(skill__trust=Skill.Trust.VETTED).values_list("skill__slug", flat=True)
    )


def entry_status(stage: Stage, recipe: StageRecipe) -> tuple[str, str]:
    """How a run starts when automation (not a person) enters the stage: (status, card note).

    Skills that nobody vetted never run unattended: such a run waits for a person's Start.
    """
    if recipe.automation == Automation.HUMAN_APPROVAL:
        return Status.AWAITING_APPROVAL, f"{stage.name} waits for someone to start it"
    if getattr(stage, "untrusted_count", None) != 0:
        untrusted = untrusted_skills(recipe)
        if untrusted:
            return Status.AWAITING_APPROVAL, (
                f"{stage.name} uses unvetted skill(s) {', '.join(untrusted)}: "
                "a person must start it"
            )
    return Status.QUEUED, ""


def _next_stage(stages: list[Stage], stage_id: int) -> Stage | None:
    index = next(i for i, s in enumerate(stages) if s.pk == stage_id)
    return stages[index + 1] if index + 1 < len(stages) else None


def _stage_by_id(stages: list[Stage], stage_id: int) -> Stage:
    return next(s for s in stages if s.pk == stage_id)


# --- Creating and enqueueing runs --------------------------------------------------------------


def enqueue(run_id: int, *, countdown: float | None = None) -> None:
    from pipeline.tasks import execute_run

    # A stable task id lets Stop revoke every copy of the message, however often it was sent.
    if countdown:
        execute_run.apply_async((run_id,), task_id=f"run-{run_id}", countdown=countdown)
    else:
        execute_run.apply_async((run_id,), task_id=f"run-{run_id}")


def _create_run(
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
) -> Run:
    recipe = runnable_recipe(stage)
    assert recipe is not None, "callers plan only runnable stages"
    now = timezone.now()
    carried: dict[str, Any] = {}
    step_index = 0
    if carry_from is not None and carry_from.error_kind != Run.ErrorKind.GATE:
        # Resume from the failed step: the steps that already succeeded are not paid for twice.
        carried = {"steps": list(carry_from.result.get("steps", []))}
        step_index = len(carried["steps"])
    # A person's request may race another launch: a savepoint turns the unique index's refusal
    # into a clear answer. Completion creates the next run under the card's lock and without.
    savepoint = transaction.atomic() if guard else contextlib.nullcontext()
    try:
        with savepoint:
            run = Run.objects.create(
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
                max_attempts=settings.RUNWAY_MAX_ATTEMPTS,
                created_at=now,
                queued_at=now if status == Status.QUEUED else None,
                step_total=getattr(stage, "step_count", 0) or recipe.steps.count(),
                step_index=step_index,
                result=carried,
                provider=recipe.provider or feature.workspace.default_provider,
                model=recipe.model or feature.workspace.default_model,
            )
    except IntegrityError as exc:
        raise AlreadyRunning(
            f"“{feature.title}” already has a pipeline running; stop it or wait for it to end."
        ) from exc
    feature.status = (
        Feature.Status.AWAITING_APPROVAL
        if status == Status.AWAITING_APPROVAL
        else Feature.Status.QUEUED
    )
    feature.status_note = note
    if status == Status.QUEUED:
        transaction.on_commit(partial(enqueue, run.pk), robust=True)
    events.card_changed_on_commit(feature)
    return run


def _lock_first(cards: QuerySet[Feature]) -> int | None:
    """Lock the card rows only (FOR UPDATE OF), with no ordering join: an ORDER BY on the stage
    would join and lock the stage row too, and every card of a column would queue on it."""
    return cards.select_for_update(of=("self",)).order_by().values_list("pk", flat=True).first()


def _lock_feature(feature_id: int) -> Feature:
    # Lock the bare row first: PostgreSQL re-checks a locked row's joins against the *old*
    # joined rows when a concurrent transaction changed the card's stage, and would then
    # return nothing. Read the card with its relations once the lock is held.
    if _lock_first(Feature.objects.filter(pk=feature_id)) is None:
        raise Feature.DoesNotExist(f"card {feature_id}")
    return Feature.objects.select_related("workspace", "workspace__stop_stage", "stage").get(
        pk=feature_id
    )


def _lock_card_of(run_id: int, **run_filters: Any) -> Feature | None:
    """Every path that changes a run and its card locks the card first, then the run: one order,
    so completion, stop, retry and rescue serialise instead of deadlocking on PostgreSQL.

    None when no run matches `run_filters`."""
    of_run = Run.objects.filter(pk=run_id, **run_filters).values("feature_id")[:1]
    feature_id = _lock_first(Feature.objects.filter(pk=Subquery(of_run)))
    if feature_id is None:
        return None
    return Feature.objects.select_related("workspace", "workspace__stop_stage", "stage").get(
        pk=feature_id
    )


def _lock_card_of_run(run_id: int) -> Feature:
    feature = _lock_card_of(run_id)
    if feature is None:
        raise Run.DoesNotExist(f"run {run_id}")
    return feature


def _has_active_run(feature: Feature) -> bool:
    return Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()


def _save_feature(feature: Feature, *fields: str) -> None:
    feature.save(update_fields=[*fields, "updated_at"])
    events.card_changed_on_commit(feature)


def _move(
    feature: Feature,
    stage: Stage,
    *,
    user: User | None = None,
    run: Run | None = None,
    note: str = "",
) -> None:
    from_stage_id = feature.stage_id
    insert_into_column(feature, stage, None)
    StageTransition.objects.create(
        feature=feature,
        from_stage_id=from_stage_id,
        to_stage=stage,
        actor_user=user,
        actor_run=run,
        note=note,
    )
    events.card_changed_on_commit(feature, previous_stage_id=from_stage_id)


# --- Launch, stop, retry, start, accept, reject ------------------------------------------------


@dataclass(frozen=True)
class Launched:
    run: Run
    pipeline: list[str]
    resumed: bool


def launch_pipeline(feature: Feature, user: User | None) -> Launched:
    """Start the card's pipeline from its current stage (or resume it from the failed stage)."""
    with transaction.atomic():
        feature = _lock_feature(feature.pk)
        if _has_active_run(feature):
            raise AlreadyRunning(
                f"“{feature.title}” already has a pipeline running; stop it or wait for it to end."
            )
        blockers = blocking_dependencies(feature)
        if blockers:
            blocked_by = ", ".join(f"#{pk}" for pk in blockers)
            raise EngineError(f"Blocked by {blocked_by}: finish them first")
        stages = board_stages(feature.workspace_id, feature.stage.board)
        start = _stage_by_id(stages, feature.stage_id)
        if runnable_recipe(start) is None:
            ahead = _next_stage(stages, start.pk)
            if ahead is None or runnable_recipe(ahead) is None:
                raise NothingToRun(
                    f"Nothing to run: neither {start.name} nor the stage after it has an "
                    "automated recipe. Move the card or add a recipe."
                )
            _move(feature, ahead, user=user, note="Launched")
            start = ahead
        last = Run.objects.filter(feature=feature).order_by("-created_at", "-id").first()
        resume_from = (
            last
            if last is not None
            and last.status == Status.FAILED
            and last.stage_id == start.pk
            and not Run.objects.filter(parent_run=last).exists()
            else None
        )
        plan = plan_from(feature.workspace, stages, start)
        run = _create_run(
            feature,
            start,
            pipeline_next=[s.key for s in plan[1:]],
            parent=resume_from,
            user=user,
            carry_from=resume_from,
        )
        _save_feature(feature, "status", "status_note", "stage", "position")
        verb = f"Resumed after run #{resume_from.pk} failed" if resume_from else "Launched"
        append_log(run.pk, f"{verb}: {' → '.join(s.key for s in plan)}")
    return Launched(run=run, pipeline=[s.key for s in plan], resumed=resume_from is not None)


def on_stage_entered(feature: Feature, *, user: User | None) -> Run | None:
    """A person moved the card here: run the stage's automation, if it has any."""
    workspace = feature.workspace
    if workspace.automation_mode == Workspace.AutomationMode.MANUAL:
        return None
    stages = board_stages(feature.workspace_id, feature.stage.board)
    stage = _stage_by_id(stages, feature.stage_id)
    recipe = runnable_recipe(stage)
    if recipe is None or recipe.automation == Automation.MANUAL:
        return None
    blockers = blocking_dependencies(feature)
    if blockers:
        # Automation never starts a card that waits for others; it says why on the card.
        blocked_by = ", ".join(f"#{pk}" for pk in blockers)
        feature.status = Feature.Status.BLOCKED
        feature.status_note = f"Blocked by {blocked_by}: finish them first"
        _save_feature(feature, "status", "status_note")
        return None
    plan = plan_from(workspace, stages, stage)
    status, note = entry_status(stage, recipe)
    run = _create_run(
        feature,
        stage,
        pipeline_next=[s.key for s in plan[1:]],
        parent=None,
        user=user,
        status=status,
        note=note,
    )
    _save_feature(feature, "status", "status_note")
    return run


def stop_pipeline(feature: Feature, user: User | None) -> int:
    """Cancel the card's active runs and end its chain. Returns how many runs were stopped."""
    who = user.get_username() if user is not None else "the system"
    with transaction.atomic():
        feature = _lock_feature(feature.pk)
        active = list(
            Run.objects.select_for_update()
            .filter(feature=feature, status__in=Run.ACTIVE_STATUSES)
            .values_list("pk", "status")
        )
        waiting = Run.objects.filter(
            feature=feature, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
        ).update(decision=Run.Decision.REJECTED, pipeline_next=[])
        if not active and not waiting:
            raise EngineError("Nothing to stop: this card has no pipeline running.")
        now = timezone.now()
        Run.objects.filter(pk__in=[pk for pk, _ in active]).update(
            status=Status.CANCELLED,
            finished_at=now,
            pipeline_next=[],
            error_kind=Run.ErrorKind.CANCELLED,
            error_message=f"Stopped by {who}.",
        )
        for pk, _ in active:
            append_log(pk, f"Cancelled: pipeline stopped by {who}", level=RunLog.Level.WARNING)
        feature.status = Feature.Status.IDLE
        feature.status_note = f"Pipeline stopped by {who}"
        _save_feature(feature, "status", "status_note")
        queued = [pk for pk, status in active if status == Status.QUEUED]
        if queued:
            transaction.on_commit(lambda: _revoke(queued))
    return len(active) + waiting


def _revoke(run_ids: list[int]) -> None:
    from config.celery import app

    # Best effort: a message that still arrives finds its run cancelled and does nothing.
    try:
        app.control.revoke([f"run-{pk}" for pk in run_ids])
    except Exception:
        logger.warning("could not revoke %s", run_ids, exc_info=True)


def _restart_stage(
    feature: Feature,
    run: Run,
    user: User | None,
    *,
    note: str,
    parent: Run | None,
    carry_from: Run | None = None,
) -> Run:
    """A new run for `run`'s stage (the card moved back there if it left), whose pipeline goes
    on from that stage as a launch's would."""
    stages = board_stages(feature.workspace_id, run.stage.board)
    stage = _stage_by_id(stages, run.stage_id)
    if runnable_recipe(stage) is None:
        raise NothingToRun(f"{stage.name} no longer has an automated recipe.")
    if feature.stage_id != stage.pk:
        _move(feature, stage, user=user, note=note)
    plan = plan_from(feature.workspace, stages, stage)
    return _create_run(
        feature,
        stage,
        pipeline_next=[s.key for s in plan[1:]],
        parent=parent,
        user=user,
        carry_from=carry_from,
    )


def retry_run(run: Run, user: User | None) -> Run:
    """A person retries a failed (or cancelled) run; the chain continues from its stage."""
    with transaction.atomic():
        feature = _lock_feature(run.feature_id)
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status not in (Status.FAILED, Status.CANCELLED):
            raise EngineError(
                f"Run #{run.pk} is {run.get_status_display().lower()}; only failed "
                "or cancelled runs can be retried."
            )
        if _has_active_run(feature):
            raise AlreadyRunning("This card already has a run in progress.")
        child = Run.objects.filter(parent_run=run).first()
        if child is not None:
            raise EngineError(
                f"Run #{run.pk} was already continued by run #{child.pk}; retry that one instead."
            )
        new_run = _restart_stage(
            feature, run, user, note=f"Retry of run #{run.pk}", parent=run, carry_from=run
        )
        _save_feature(feature, "status", "status_note", "stage", "position")
        append_log(new_run.pk, f"Retry of run #{run.pk}")
    return new_run


def start_run(run: Run, user: User | None) -> Run:
    """Start a run that waits for approval (human_approval stages)."""
    with transaction.atomic():
        feature = _lock_card_of_run(run.pk)
        now = timezone.now()
        started = Run.objects.filter(pk=run.pk, status=Status.AWAITING_APPROVAL).update(
            status=Status.QUEUED, queued_at=now, triggered_by=user
        )
        if not started:
            raise EngineError(f"Run #{run.pk} is not waiting for approval.")
        feature.status, feature.status_note = Feature.Status.QUEUED, ""
        _save_feature(feature, "status", "status_note")
        who = user.get_username() if user is not None else "the system"
        append_log(run.pk, f"Started by {who}")
        transaction.on_commit(partial(enqueue, run.pk), robust=True)
    run.refresh_from_db()
    return run


def accept_run(run: Run, user: User | None) -> Run | None:
    """Accept a result that waits for a decision; the chain goes on. Returns the next run."""
    with transaction.atomic():
        feature = _lock_card_of_run(run.pk)
        decided = Run.objects.filter(
            pk=run.pk, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
        ).update(decision=Run.Decision.ACCEPTED)
        if not decided:
            raise EngineError(f"Run #{run.pk} has no result waiting for a decision.")
        run = Run.objects.select_related("stage").get(pk=run.pk)
        who = user.get_username() if user is not None else "the system"
        append_log(run.pk, f"Result accepted by {who}")
        if _has_active_run(feature):
            return None  # the card moved on and has other work: the decision is recorded
        if feature.stage_id != run.stage_id:
            feature.status, feature.status_note = Feature.Status.IDLE, ""
            _save_feature(feature, "status", "status_note")
            return None
        stages = board_stages(feature.workspace_id, run.stage.board)
        return _advance(run, feature, stages)


def reject_run(run: Run, user: User | None, reason: str = "") -> None:
    with transaction.atomic():
        feature = _lock_card_of_run(run.pk)
        decided = Run.objects.filter(
            pk=run.pk, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
        ).update(decision=Run.Decision.REJECTED, pipeline_next=[])
        if not decided:
            raise EngineError(f"Run #{run.pk} has no result waiting for a decision.")
        who = user.get_username() if user is not None else "the system"
        note = f"Result rejected by {who}" + (f": {reason}" if reason else "")
        append_log(run.pk, note, level=RunLog.Level.WARNING)
        if not _has_active_run(feature):
            feature.status, feature.status_note = Feature.Status.IDLE, note[:500]
            _save_feature(feature, "status", "status_note")


# --- Claim, progress, failure, completion (called by the executor) -------------------------------


def claim_run(run_id: int, worker_id: str) -> Run | None:
    """Take a queued run. None when someone else has it or it is finished (duplicate delivery)."""
    now = timezone.now()
    with transaction.atomic():
        queued = Run.objects.filter(pk=run_id, status=Status.QUEUED).values("feature_id")[:1]
        locked = _lock_first(Feature.objects.filter(pk=Subquery(queued)))
        if locked is None:
            return None
        refusal = _admission(run_id, now)
        if refusal is not None:
            _defer(run_id, locked, *refusal, now=now)
            return None
        # A copy of the message (dispatch sweep, redelivery) must not cut a backoff short.
        claimed = (
            Run.objects.filter(pk=run_id, status=Status.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLAIM_EARLY))
            .update(
                status=Status.RUNNING,
                attempt=F("attempt") + 1,
                worker_id=worker_id,
                claimed_at=now,
                heartbeat_at=now,
                started_at=Coalesce(F("started_at"), Value(now)),
                next_attempt_at=None,
            )
        )
        if not claimed:
            return None
        run = Run.objects.select_related("feature", "stage", "workspace").get(pk=run_id)
        Feature.objects.filter(pk=run.feature_id).update(
            status=Feature.Status.RUNNING, status_note="", updated_at=now
        )
        events.card_changed_on_commit(run.feature)
    return run


def month_spend(workspace_id: int, now: datetime) -> Decimal:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = Run.objects.filter(workspace_id=workspace_id, created_at__gte=start).aggregate(
        total=Sum("cost_usd")
    )["total"]
    return total or Decimal("0")


def _admission(run_id: int, now: datetime) -> tuple[str, float] | None:
    """Why the workspace cannot start this run now, and when to look again; None if it can.

    The workspace row is locked so two workers cannot both take the last free slot.
    """
    workspace_id = Run.objects.values_list("workspace_id", flat=True).get(pk=run_id)
    workspace = Workspace.objects.select_for_update().order_by().get(pk=workspace_id)
    running = Run.objects.filter(workspace_id=workspace_id, status=Status.RUNNING).count()
    if running >= workspace.max_concurrent_runs:
        return (
            f"Waiting for a free slot: {running} runs are running in this workspace "
            f"(limit {workspace.max_concurrent_runs})",
            ADMISSION_RETRY_SECONDS,
        )
    budget = workspace.monthly_budget_usd
    if budget is not None:
        spent = month_spend(workspace_id, now)
        if spent >= budget:
            return (
                f"Budget reached: ${spent:.2f} of ${budget:.2f} spent this month; "
                "raise the budget to resume",
                BUDGET_RETRY_SECONDS,
            )
    return None


def _defer(run_id: int, feature_id: int, why: str, retry_in: float, *, now: datetime) -> None:
    """Leave the run queued, say why on the card, and look again later."""
    Run.objects.filter(pk=run_id, status=Status.QUEUED).update(
        next_attempt_at=now + timedelta(seconds=retry_in),
        error_kind=Run.ErrorKind.DEFERRED,
        error_message=why,
    )
    feature = Feature(pk=feature_id, workspace_id=Run.objects.get(pk=run_id).workspace_id)
    Feature.objects.filter(pk=feature_id).exclude(status_note=why[:500]).update(
        status=Feature.Status.QUEUED, status_note=why[:500], updated_at=now
    )
    events.card_changed_on_commit(feature)
    transaction.on_commit(partial(enqueue, run_id, countdown=retry_in), robust=True)


def resume_deferred(workspace: Workspace) -> int:
    """Budget raised or slots freed: send the workspace's waiting runs again now."""
    waiting = list(
        Run.objects.filter(
            workspace=workspace, status=Status.QUEUED, error_kind=Run.ErrorKind.DEFERRED
        ).values_list("pk", flat=True)
    )
    Run.objects.filter(pk__in=waiting).update(next_attempt_at=None)
    for run_id in waiting:
        transaction.on_commit(partial(enqueue, run_id), robust=True)
    return len(waiting)


def still_running(run_id: int, attempt: int) -> bool:
    return Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).exists()


def record_step(run_id: int, attempt: int, steps: list[StepResult], usage: dict[str, int]) -> bool:
    """Keep a finished step's output on the run so a retry resumes after it. False: not ours."""
    run = Run.objects.only("result").get(pk=run_id)
    result = dict(run.result)
    result["steps"] = [s.as_dict() for s in steps]
    with transaction.atomic():
        ours = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            result=result,
            step_index=len(steps),
            heartbeat_at=timezone.now(),
            **{k: F(k) + v for k, v in usage.items() if v},
        )
        if ours:
            flush_buffered(run_id)
    return bool(ours)


def _finish_failed(
    run_id: int, attempt: int, *, kind: str, message: str, feature_note: str
) -> bool:
    with transaction.atomic():
        feature = _lock_card_of_run(run_id)
        failed = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            error_kind=kind,
            error_message=message,
        )
        if not failed:
            return False
        feature.status, feature.status_note = Feature.Status.FAILED, feature_note[:500]
        _save_feature(feature, "status", "status_note")
        append_log(run_id, message, level=RunLog.Level.ERROR, attempt=attempt)
        flush_buffered(run_id)
        events.toast_on_commit(
            feature.workspace_id,
            f"“{feature.title}”: {feature_note}",
            level="error",
            feature_id=feature.pk,
            run_id=run_id,
        )
    return True


def fail_run(run_id: int, attempt: int, message: str) -> bool:
    """A permanent error: the run fails now and the chain stops with a message to act on."""
    return _finish_failed(
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
    run = Run.objects.only("result", "max_attempts").get(pk=run_id)
    failures = dict(run.result.get("failures", {}))
    count = int(failures.get(str(step_index), 0)) + 1
    if count > retry_count or attempt >= run.max_attempts:
        return _finish_failed(
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
    with transaction.atomic():
        _lock_card_of_run(run_id)
        requeued = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.QUEUED,
            queued_at=now,
            next_attempt_at=next_at,
            worker_id="",
            error_kind=Run.ErrorKind.TRANSIENT,
            error_message=f"{message} — retry {count} of {retry_count} at {next_at:%H:%M:%S} UTC",
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
        _mark_feature_queued(run_id, f"Retrying at {next_at:%H:%M:%S} UTC after: {message}")
        flush_buffered(run_id)
        transaction.on_commit(partial(enqueue, run_id, countdown=delay), robust=True)
    return True


def _mark_feature_queued(run_id: int, note: str = "") -> None:
    """The card's run went back to the queue (retry, rescue): say so on the card, live."""
    feature_id, workspace_id = Run.objects.values_list("feature_id", "workspace_id").get(pk=run_id)
    Feature.objects.filter(pk=feature_id).update(
        status=Feature.Status.QUEUED, status_note=note[:500], updated_at=timezone.now()
    )
    events.card_changed_on_commit(Feature(pk=feature_id, workspace_id=workspace_id))


def complete_run(run_id: int, attempt: int, steps: list[StepResult], usage: dict[str, int]) -> bool:
    """Store the result, check gates and advance the card — all or nothing, and only once.

    The first UPDATE is the fence (status=running and this attempt) and takes the run's row
    lock; the last one records the outcome, so `finished_at` is when the result was stored.
    """
    with transaction.atomic():
        feature = _lock_card_of_run(run_id)
        # Not active any more from here on: the next run may be created in this transaction.
        ours = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.SUCCEEDED, heartbeat_at=timezone.now()
        )
        if not ours:
            return False
        run = Run.objects.select_related("stage", "stage__recipe").get(pk=run_id)
        artifacts = _save_artifacts(run, feature, steps)
        created = _create_generated_cards(run, feature, steps)
        metrics = {k: v for step in steps for k, v in step.metrics.items()}
        recipe = run.stage.recipe
        results = evaluate(
            [
                GateSpec(g.name, g.type, g.config, g.required, g.failure_message)
                for g in recipe.gates.all()
            ],
            [ArtifactView(a.name, a.kind, a.content) for a in artifacts],
            metrics,
        )
        run.status = Status.SUCCEEDED
        run.error_kind, run.error_message = "", ""
        failures = blocking_failures(results)
        stages = board_stages(feature.workspace_id, run.stage.board)
        if failures:
            _apply_gate_failure(run, feature, stages, "; ".join(f.message for f in failures))
        elif recipe.automation == Automation.AUTO_NOTIFY:
            run.decision = Run.Decision.PENDING
            feature.status = Feature.Status.AWAITING_APPROVAL
            feature.status_note = f"{run.stage.name} result is ready: accept or reject it"
            _save_feature(feature, "status", "status_note")
            append_log(run.pk, "Result waits for accept or reject", attempt=attempt)
        else:
            _advance(run, feature, stages)
        if created:
            events.toast_on_commit(
                run.workspace_id,
                f"Feature created! {len(created)} tasks added",
                level="success",
                feature_id=feature.pk,
                task_count=len(created),
            )
        flush_buffered(run_id)
        Run.objects.filter(pk=run_id).update(
            status=run.status,
            decision=run.decision,
            finished_at=timezone.now(),
            step_index=len(steps),
            error_kind=run.error_kind,
            error_message=run.error_message,
            result={
                # What a person gave a rerun stays on the run it shaped.
                **{k: run.result[k] for k in ("feedback", "inputs") if k in run.result},
                "steps": [s.as_dict() for s in steps],
                "gates": [r.as_dict() for r in results],
                "metrics": metrics,
                "created_cards": created,
            },
            skill_versions={s.skill: s.version for s in steps},
            **{k: F(k) + v for k, v in usage.items() if v},
        )
    return True


def _save_artifacts(run: Run, feature: Feature, steps: list[StepResult]) -> list[Artifact]:
    names = [s.artifact_name for s in steps]
    latest = dict(
        Artifact.objects.filter(feature=feature, name__in=names)
        .values("name")
        .annotate(top=Max("version"))
        .values_list("name", "top")
    )
    artifacts = []
    for step in steps:
        version = latest.get(step.artifact_name, 0) + 1
        latest[step.artifact_name] = version
        is_json = step.output == "tasks"
        artifacts.append(
            Artifact(
                feature=feature,
                run=run,
                name=step.artifact_name,
                version=version,
                kind=Artifact.Kind.JSON if is_json else Artifact.Kind.DOCUMENT,
                content=step.text,
                data=step.data,
            )
        )
    Artifact.objects.bulk_create(artifacts)
    return artifacts


def _create_generated_cards(run: Run, feature: Feature, steps: list[StepResult]) -> list[int]:
    """Task lists become child cards in one bulk insert, keyed by (run, item) so never twice.

    The child's kind follows the parent's: an epic's list is stories, a story's is subtasks
    (tasks), anything else's is tasks.
    """
    items: list[dict[str, Any]] = []
    for step in steps:
        if step.output == "tasks":
            items.extend(t for t in step.data.get("tasks", []) if isinstance(t, dict))
    if not items:
        return []
    existing = list(
        Feature.objects.filter(source_run=run, source_index__lt=len(items))
        .order_by("source_index")
        .values_list("pk", flat=True)
    )
    if existing:  # this run's list was turned into cards already: never twice
        return existing
    kind = _child_kind(feature.kind)
    # Stories land where their own pipeline can run them (their subtasks go to the work board).
    board = Stage.Board.FEATURE if kind == Feature.Kind.STORY else Stage.Board.WORK
    todo = (
        Stage.objects.filter(workspace_id=feature.workspace_id, board=board)
        .order_by("position")
        .first()
    )
    if todo is None:
        return []
    depends = [
        [d for d in _indexes(item.get("depends_on")) if 0 <= d < len(items) and d != i]
        for i, item in enumerate(items)
    ]
    top = Feature.objects.filter(stage=todo).aggregate(top=Max("position"))["top"]
    start = 0 if top is None else top + 1
    cards = [
        Feature(
            workspace_id=feature.workspace_id,
            title=str(item.get("title") or f"{Feature.Kind(kind).label} {i + 1}")[:200],
            description=str(item.get("description") or "")[:20_000],
            kind=kind,
            stage=todo,
            position=start + i,
            parent=feature,
            status=Feature.Status.BLOCKED if depends[i] else Feature.Status.IDLE,
            status_note=f"Waits for the {kind} cards it depends on" if depends[i] else "",
            source_run=run,
            source_index=i,
        )
        for i, item in enumerate(items)
    ]
    Feature.objects.bulk_create(cards)
    if any(c.pk is None for c in cards):  # backends without RETURNING
        by_index = dict(Feature.objects.filter(source_run=run).values_list("source_index", "pk"))
        for i, card in enumerate(cards):
            card.pk = by_index[i]
    Dependency.objects.bulk_create(
        Dependency(feature=cards[i], depends_on=cards[d])
        for i in range(len(cards))
        for d in dict.fromkeys(depends[i])
    )
    StageTransition.objects.bulk_create(
        StageTransition(feature=c, to_stage=todo, actor_run=run, note=f"Generated by run #{run.pk}")
        for c in cards
    )
    for card in cards:
        events.card_changed_on_commit(card, created=True)
    return [c.pk for c in cards if c.pk is not None]


def _child_kind(parent_kind: str) -> str:
    """What a card's generated work is: an epic splits into stories, anything else into tasks
    (a story's are its subtasks)."""
    return Feature.Kind.STORY if parent_kind == Feature.Kind.EPIC else Feature.Kind.TASK


def _indexes(value: Any) -> list[int]:
    """A task's depends_on as the model gave it: a list of earlier indexes, ideally."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list):
        return [d for d in value if isinstance(d, int) and not isinstance(d, bool)]
    return []


def _advance(run: Run, feature: Feature, stages: list[Stage]) -> Run | None:
    """Move the card on and create the next run if the chain continues. Returns the next run."""
    next_stage = _next_stage(stages, run.stage_id)
    if next_stage is None:
        feature.status, feature.status_note = Feature.Status.DONE, ""
        _save_feature(feature, "status", "status_note")
        append_log(run.pk, "Pipeline finished: last stage of the board")
        return None
    _move(feature, next_stage, run=run, note=f"{run.stage.name} passed its gates")
    unblock_dependents(feature, next_stage)
    remaining = list(run.pipeline_next)
    if remaining and remaining[0] == next_stage.key and runnable_recipe(next_stage) is not None:
        recipe = runnable_recipe(next_stage)
        assert recipe is not None
        status, note = entry_status(next_stage, recipe)
        next_run = _create_run(
            feature,
            next_stage,
            pipeline_next=remaining[1:],
            parent=run,
            user=None,
            status=status,
            note=note,
            guard=False,
        )
        _save_feature(feature, "status", "status_note", "stage", "position")
        append_log(run.pk, f"Advanced to {next_stage.key}; next run #{next_run.pk}")
        return next_run
    feature.status = Feature.Status.DONE if next_stage.is_done else Feature.Status.IDLE
    feature.status_note = ""
    _save_feature(feature, "status", "status_note", "stage", "position")
    append_log(run.pk, f"Pipeline finished: card is in {next_stage.name}")
    events.toast_on_commit(
        feature.workspace_id,
        f"“{feature.title}” reached {next_stage.name}",
        level="success",
        feature_id=feature.pk,
    )
    return None


def _apply_gate_failure(run: Run, feature: Feature, stages: list[Stage], why: str) -> None:
    on_fail = run.stage.recipe.on_fail
    append_log(run.pk, f"Gates failed: {why}", level=RunLog.Level.ERROR)
    if on_fail == OnFail.REVIEW_REQUIRED:
        # The result stands but a person decides: Accept overrides the gates, Reject ends it.
        run.decision = Run.Decision.PENDING
        feature.status = Feature.Status.BLOCKED
        feature.status_note = f"Review required: {why}"[:500]
        _save_feature(feature, "status", "status_note")
        return
    run.status = Status.FAILED
    run.error_kind = Run.ErrorKind.GATE
    run.error_message = why
    feature.status = Feature.Status.FAILED
    feature.status_note = f"Gate failed: {why}"[:500]
    if on_fail == OnFail.REVERT:
        index = next(i for i, s in enumerate(stages) if s.pk == run.stage_id)
        if index > 0:
            _move(feature, stages[index - 1], run=run, note=f"Reverted: {why}"[:500])
    elif on_fail == OnFail.CREATE_QUESTIONS:
        question = Feature.objects.create(
            workspace_id=feature.workspace_id,
            title=f"Questions: {feature.title}"[:200],
            description=f"The {run.stage.name} gates failed for run #{run.pk}:\n\n{why}",
            kind=Feature.Kind.TASK,
            stage=Stage.objects.filter(workspace_id=feature.workspace_id, board=Stage.Board.WORK)
            .order_by("position")
            .first()
            or feature.stage,
            parent=feature,
            source_run=run,
            source_index=10_000,  # after any generated task of the same run
        )
        events.card_changed_on_commit(question, created=True)
    _save_feature(feature, "status", "status_note", "stage", "position")
    events.toast_on_commit(
        feature.workspace_id,
        f"“{feature.title}”: gate failed — {why}",
        level="error",
        feature_id=feature.pk,
        run_id=run.pk,
    )


# --- Sweeps (beat) -----------------------------------------------------------------------------


def dispatch_stale_queued(older_than: timedelta | None = None) -> int:
    """Re-send runs that have waited in the queue too long: their message was probably lost.

    While the broker still holds as many messages as there are waiting runs, the workers are
    just busy; sending more would only grow the backlog. A copy that does arrive twice finds
    nothing to claim.
    """
    older_than = older_than or timedelta(seconds=settings.RUNWAY_DISPATCH_AFTER_SECONDS)
    now = timezone.now()
    cutoff = now - older_than
    due = list(
        Run.objects.filter(status=Status.QUEUED)
        .filter(
            Q(next_attempt_at__isnull=True, queued_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff)
        )
        .values_list("pk", flat=True)[:500]
    )
    if not due:
        return 0
    backlog = broker_backlog()
    if backlog is not None and backlog >= len(due):
        return 0
    sent = 0
    for run_id in due:
        with transaction.atomic():
            stamped = Run.objects.filter(pk=run_id, status=Status.QUEUED).update(
                queued_at=now, next_attempt_at=None
            )
            if not stamped:
                continue
            append_log(
                run_id, "Re-dispatched: queued with no worker claim", level=RunLog.Level.WARNING
            )
            transaction.on_commit(partial(enqueue, run_id), robust=True)
            sent += 1
    return sent


def _requeue_lost(run_id: int, attempt: int, *, why: str, note: str) -> bool:
    """Put a running run whose worker is gone back in the queue; its attempt is kept."""
    with transaction.atomic():
        _lock_card_of_run(run_id)
        moved = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.QUEUED,
            queued_at=timezone.now(),
            worker_id="",
            error_kind=Run.ErrorKind.LOST,
            error_message=why,
        )
        if not moved:
            return False
        append_log(run_id, f"{why}; requeued", level=RunLog.Level.WARNING, attempt=attempt)
        _mark_feature_queued(run_id, note)
        transaction.on_commit(partial(enqueue, run_id), robust=True)
    return True


def rescue_stale_running(older_than: timedelta | None = None) -> tuple[int, int]:
    """Runs whose worker stopped heartbeating: requeue while attempts remain, else fail clearly."""
    older_than = older_than or timedelta(seconds=settings.RUNWAY_RESCUE_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    stale = list(
        Run.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", "attempt", "max_attempts", "worker_id"
        )[:500]
    )
    requeued = failed = 0
    for run_id, attempt, max_attempts, worker_id in stale:
        silent = f"no heartbeat from {worker_id or 'its worker'} for {older_than.seconds} s"
        if attempt < max_attempts:
            requeued += _requeue_lost(
                run_id,
                attempt,
                why=f"Rescued after attempt {attempt}: {silent}",
                note="Requeued: its worker stopped responding",
            )
        elif _finish_failed(
            run_id,
            attempt,
            kind=Run.ErrorKind.LOST,
            message=f"Gave up after {attempt} attempts: {silent}. Check the workers, then Retry.",
            feature_note=f"Worker lost {attempt} times; check the workers, then Retry",
        ):
            failed += 1
    return requeued, failed


def rescue_run(run: Run, user: User | None) -> bool:
    """An operator declares a running run's worker dead: requeue it now (attempt is kept)."""
    who = user.get_username() if user is not None else "the system"
    return _requeue_lost(run.pk, run.attempt, why=f"Rescued by {who}", note=f"Rescued by {who}")


# --- Edit and rerun ------------------------------------------------------------------------------


def rerun_run(
    run: Run, user: User | None, *, feedback: str = "", inputs: dict[str, str] | None = None
) -> Run:
    """Run a finished run's stage again with a person's feedback and/or edited inputs.

    The new run links back through `rerun_of` (not `parent_run`: the old run's chain is its own
    history and stays as it was), runs every step afresh and continues the pipeline from that
    stage as a retry would. Its artifacts are new versions, so the two results can be diffed.
    """
    feedback = feedback.strip()
    edited = {str(k): str(v) for k, v in (inputs or {}).items()}
    with transaction.atomic():
        feature = _lock_feature(run.feature_id)
        run = Run.objects.select_for_update().select_related("stage").get(pk=run.pk)
        if run.status not in Run.FINISHED_STATUSES:
            raise EngineError(
                f"Run #{run.pk} is {run.get_status_display().lower()}; rerun it once it ends."
            )
        if _has_active_run(feature):
            raise AlreadyRunning("This card already has a run in progress; stop it first.")
        new_run = _restart_stage(feature, run, user, note=f"Rerun of run #{run.pk}", parent=None)
        request: dict[str, Any] = {}
        if feedback:
            request["feedback"] = feedback
        if edited:
            request["inputs"] = edited
        Run.objects.filter(pk=new_run.pk).update(rerun_of=run, result=request)
        new_run.rerun_of, new_run.result = run, request
        _save_feature(feature, "status", "status_note", "stage", "position")
        what = [w for w, given in (("feedback", feedback), ("edited inputs", edited)) if given]
        append_log(
            new_run.pk,
            f"Rerun of run #{run.pk}"
            + (f" with {' and '.join(what)}" if what else "")
            + (f": {feedback}" if feedback else ""),
        )
    return new_run
