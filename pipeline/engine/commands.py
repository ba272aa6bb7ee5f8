"""The commands people issue: launch, stop, retry, start, accept, reject, rerun, rescue.

Each is one transaction that locks the card first; enqueues and events go out after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from features.actions import (
    FeatureError,
    blocking_dependencies,
    do_create_feature,
    do_move_feature,
)
from features.models import Feature, Stage, Workspace
from pipeline.engine import audit_trail, transitions
from pipeline.engine.card_state import engine_transaction
from pipeline.engine.cards import record_move, touch_with_dependents
from pipeline.engine.completion import advance
from pipeline.engine.errors import AlreadyRunning, EngineError, NothingToRun
from pipeline.engine.launching import Launched, start_card
from pipeline.engine.locks import has_active_run, lock_card_of_run, lock_columns, lock_feature
from pipeline.engine.planning import (
    board_stages,
    entry_status,
    kind_path,
    on_path,
    plan_from,
    runnable_recipe,
    stage_by_id,
)
from pipeline.engine.runs import create_run, enqueue, revoke
from pipeline.engine.sweeps import requeue_lost
from pipeline.engine.trees import run_ended
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log
from skills.models import StageRecipe

Status = Run.Status
Automation = StageRecipe.Automation

# --- Launch, stop, retry, start, accept, reject ------------------------------------------------


def launch_pipeline(
    feature: Feature, user: User | None, *, trigger: str = Run.Trigger.PERSON
) -> Launched:
    """Start the card's pipeline from its current stage (or resume it from the failed stage).

    A person's launch starts the first stage at once: their click is its approval. A launch
    without a person (`trigger` health_check) follows the same automation levels and trust
    rules as a stage the chain enters: a human_approval stage, or one using skills nobody
    vetted, waits for Start, and a manual stage runs nothing. The stages run are the card
    kind's path (launching.start_card). Raises AlreadyRunning, NothingToRun, or EngineError
    (its delivery is blocked by unfinished dependencies; planning never is).
    """
    with engine_transaction():
        feature = lock_feature(feature.pk)
        launched = start_card(feature, user, trigger=trigger)
        run = launched.run
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.launch",
            audit_trail.card(feature),
            {
                "run": run.pk,
                "stage": run.stage.key,
                "pipeline": launched.pipeline,
                "resumed": launched.resumed,
            },
        )
        return launched


@dataclass(frozen=True)
class Created:
    feature: Feature
    launched: Launched | None


def create_feature(
    workspace: Workspace,
    *,
    title: str,
    user: User | None,
    description: str = "",
    kind: str = Feature.Kind.FEATURE,
    parent: Feature | None = None,
    stage: Stage | None = None,
    launch: bool = False,
) -> Created:
    """Create a card (and, with `launch`, start its pipeline): the one writer for new cards,
    used by the board, the API, the CLI and the admin.

    One transaction: a launch that is refused leaves no card behind. Raises FeatureError for a
    card that cannot be made (title, kind, parent or stage) and EngineError when the launch is
    refused.
    """
    with engine_transaction():
        feature = do_create_feature(
            workspace,
            title=title,
            user=user,
            description=description,
            kind=kind,
            parent=parent,
            stage=stage,
        )
        launched = launch_pipeline(feature, user) if launch else None
    feature.refresh_from_db()
    return Created(feature=feature, launched=launched)


def on_stage_entered(feature: Feature, *, user: User | None) -> Run | None:
    """A person moved the card here: run the stage's automation, if it has any and the stage
    is on the card kind's path. In a delivery stage, a card with unfinished dependencies gets
    a waiting run instead, which starts by itself once they are finished."""
    workspace = feature.workspace
    if workspace.automation_mode == Workspace.AutomationMode.MANUAL:
        return None
    stages = board_stages(feature.workspace_id, feature.stage.board)
    stage = stage_by_id(stages, feature.stage_id)
    path = kind_path(workspace, feature.kind)
    recipe = runnable_recipe(stage)
    if recipe is None or recipe.automation == Automation.MANUAL or not on_path(stage, path):
        return None
    blocked = bool(blocking_dependencies(feature))
    if blocked and stage.delivers:
        plan = plan_from(workspace, stages, stage, path=path)
        run = create_run(
            feature,
            stage,
            pipeline_next=[s.key for s in plan[1:]],
            parent=None,
            user=user,
            status=Status.WAITING,
        )
        append_log(run.pk, f"{stage.name} waits for this card's dependencies to finish")
        return run
    plan = plan_from(workspace, stages, stage, path=path, blocked=blocked)
    status, note = entry_status(stage, recipe)
    return create_run(
        feature,
        stage,
        pipeline_next=[s.key for s in plan[1:]],
        parent=None,
        user=user,
        status=status,
        note=note,
    )


def move_feature(
    feature: Feature,
    stage: Stage,
    *,
    user: User | None,
    position: int | None = None,
    note: str = "",
    start_automation: bool = True,
) -> Feature:
    """A person moves a card (board, API, CLI, admin): the one writer for moves.

    The card is placed at index `position` of `stage` (None: at the end of the column). A card
    with an active run may be reordered in its column but not moved to another stage. Entering a
    stage starts its automation unless `start_automation` is False (an operator's correction
    in the admin). Raises FeatureError when the move is refused.
    """
    with engine_transaction():
        lock_columns(feature.pk, stage.pk)
        locked = lock_feature(feature.pk)
        entering = locked.stage_id != stage.pk
        before = {"stage": locked.stage.key, "position": locked.position}
        if entering and has_active_run(locked):
            raise FeatureError(
                "This card has an active run; stop the pipeline before moving it to another stage."
            )
        moved = do_move_feature(locked, stage, user=user, position=position, note=note)
        after = {"stage": stage.key, "position": moved.position}
        audit_trail.by_person(
            user,
            moved.workspace_id,
            "card.move",
            audit_trail.card(moved),
            {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]}
            | ({"note": note} if note else {}),
        )
        if entering:
            touch_with_dependents(moved)
            if start_automation:
                on_stage_entered(moved, user=user)
    return moved


def stop_pipeline(feature: Feature, user: User | None) -> int:
    """Cancel the card's active runs and end its chain. Returns how many runs were stopped."""
    who = user.get_username() if user is not None else "the system"
    with engine_transaction():
        feature = lock_feature(feature.pk)
        note = f"Pipeline stopped by {who}"
        active = transitions.cancel(feature.pk, message=f"Stopped by {who}.", note=note)
        waiting = transitions.reject_waiting(feature.pk, note=note)
        if not active and not waiting:
            raise EngineError("Nothing to stop: this card has no pipeline running.")
        for pk, _ in active:
            append_log(pk, f"Cancelled: pipeline stopped by {who}", level=RunLog.Level.WARNING)
        queued = [pk for pk, status in active if status == Status.QUEUED]
        if queued:
            transaction.on_commit(partial(revoke, queued))
        for pk, _ in active:
            run_ended(pk)  # a batch's run: its followers say why they wait, the batch may end
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.stop",
            audit_trail.card(feature),
            {"runs": [pk for pk, _ in active], "waiting_results_rejected": waiting},
        )
    return len(active) + waiting


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
    on from that stage as a launch's would. It stays in `run`'s batch, if any: the cards of a
    tree that wait for this one go on when it succeeds."""
    stages = board_stages(feature.workspace_id, run.stage.board)
    stage = stage_by_id(stages, run.stage_id)
    if runnable_recipe(stage) is None:
        raise NothingToRun(f"{stage.name} no longer has an automated recipe.")
    if feature.stage_id != stage.pk:
        record_move(feature, stage, user=user, note=note)
    blocked = bool(blocking_dependencies(feature))
    path = kind_path(feature.workspace, feature.kind)
    plan = plan_from(feature.workspace, stages, stage, path=path, blocked=blocked)
    return create_run(
        feature,
        stage,
        pipeline_next=[s.key for s in plan[1:]],
        parent=parent,
        user=user,
        carry_from=carry_from,
        batch_id=run.batch_id,
    )


def retry_run(run: Run, user: User | None) -> Run:
    """A person retries a failed (or cancelled) run; the chain continues from its stage."""
    with engine_transaction():
        feature = lock_feature(run.feature_id)
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status not in (Status.FAILED, Status.CANCELLED):
            raise EngineError(
                f"Run #{run.pk} is {run.get_status_display().lower()}; only failed "
                "or cancelled runs can be retried."
            )
        if has_active_run(feature):
            raise AlreadyRunning("This card already has a run in progress.")
        child = Run.objects.filter(parent_run=run).first()
        if child is not None:
            raise EngineError(
                f"Run #{run.pk} was already continued by run #{child.pk}; retry that one instead."
            )
        new_run = _restart_stage(
            feature, run, user, note=f"Retry of run #{run.pk}", parent=run, carry_from=run
        )
        append_log(new_run.pk, f"Retry of run #{run.pk}")
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.retry",
            audit_trail.run_target(run, feature),
            {"new_run": new_run.pk, "stage": new_run.stage.key},
        )
    return new_run


def start_run(run: Run, user: User | None) -> Run:
    """Start a run that waits for approval (human_approval stages, unvetted skills)."""
    with engine_transaction():
        feature = lock_card_of_run(run.pk)
        if not transitions.start(run.pk, user_id=user.pk if user is not None else None):
            raise EngineError(f"Run #{run.pk} is not waiting for approval.")
        who = user.get_username() if user is not None else "the system"
        append_log(run.pk, f"Started by {who}")
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.decision",
            audit_trail.run_target(run, feature),
            {"decision": "start", "stage": run.stage.key},
        )
        transaction.on_commit(partial(enqueue, run.pk), robust=True)
    run.refresh_from_db()
    return run


def accept_run(run: Run, user: User | None) -> Run | None:
    """Accept a result that waits for a decision; the chain goes on (its generated cards are
    made now). Returns the next run."""
    with engine_transaction():
        feature = lock_card_of_run(run.pk)
        if not transitions.decide(run.pk, Run.Decision.ACCEPTED):
            raise EngineError(f"Run #{run.pk} has no result waiting for a decision.")
        run = Run.objects.select_related("stage").get(pk=run.pk)
        who = user.get_username() if user is not None else "the system"
        append_log(run.pk, f"Result accepted by {who}")
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.decision",
            audit_trail.run_target(run, feature),
            {"decision": "accept", "stage": run.stage.key},
        )
        if has_active_run(feature) or feature.stage_id != run.stage_id:
            next_run = None  # the card moved on and has other work: the decision is recorded
        else:
            stages = board_stages(feature.workspace_id, run.stage.board)
            next_run = advance(run, feature, stages)
        if run.batch_id is not None:
            run_ended(run.pk)
        return next_run


def reject_run(run: Run, user: User | None, reason: str = "") -> None:
    with engine_transaction():
        feature = lock_card_of_run(run.pk)
        who = user.get_username() if user is not None else "the system"
        note = f"Result rejected by {who}" + (f": {reason}" if reason else "")
        if not transitions.decide(run.pk, Run.Decision.REJECTED, note=note, pipeline_next=[]):
            raise EngineError(f"Run #{run.pk} has no result waiting for a decision.")
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.decision",
            audit_trail.run_target(run, feature),
            {"decision": "reject", "stage": run.stage.key} | ({"reason": reason} if reason else {}),
        )
        append_log(run.pk, note, level=RunLog.Level.WARNING)
        run_ended(run.pk)


def rescue_run(run: Run, user: User | None) -> bool:
    """An operator declares a running run's worker dead: requeue it now (attempt is kept)."""
    who = user.get_username() if user is not None else "the system"
    with engine_transaction():
        rescued = requeue_lost(
            run.pk, run.attempt, why=f"Rescued by {who}", note=f"Rescued by {who}"
        )
        if rescued:
            audit_trail.by_person(
                user,
                run.feature.workspace_id,
                "run.rescue",
                audit_trail.run_target(run),
                {"attempt": run.attempt},
            )
    return rescued


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
    with engine_transaction():
        feature = lock_feature(run.feature_id)
        run = Run.objects.select_for_update().select_related("stage").get(pk=run.pk)
        if run.status not in Run.FINISHED_STATUSES:
            raise EngineError(
                f"Run #{run.pk} is {run.get_status_display().lower()}; rerun it once it ends."
            )
        if has_active_run(feature):
            raise AlreadyRunning("This card already has a run in progress; stop it first.")
        new_run = _restart_stage(feature, run, user, note=f"Rerun of run #{run.pk}", parent=None)
        request: dict[str, Any] = {}
        if feedback:
            request["feedback"] = feedback
        if edited:
            request["inputs"] = edited
        Run.objects.filter(pk=new_run.pk).update(rerun_of=run, result=request)
        new_run.rerun_of, new_run.result = run, request
        what = [w for w, given in (("feedback", feedback), ("edited inputs", edited)) if given]
        append_log(
            new_run.pk,
            f"Rerun of run #{run.pk}"
            + (f" with {' and '.join(what)}" if what else "")
            + (f": {feedback}" if feedback else ""),
        )
        audit_trail.by_person(
            user,
            feature.workspace_id,
            "run.retry",
            audit_trail.run_target(run, feature),
            {"new_run": new_run.pk, "stage": run.stage.key, "rerun": True}
            | ({"feedback": feedback} if feedback else {})
            | ({"edited_inputs": sorted(edited)} if edited else {}),
        )
    return new_run
