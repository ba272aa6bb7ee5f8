"""Starting a card's pipeline: where it starts, which stages it runs, and its first run.

One function (:func:`start_card`) for a person's Launch, a health check's, and every card a
batch or a whole tree starts, so they all follow the same rules: the card kind's path
(``Workspace.kind_stages``), the stop stage, resuming after a failure, and dependencies, which
hold back delivery and never planning.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from features.models import Feature, Stage
from pipeline.engine.card_state import Blocker, blocked_note, blockers_of
from pipeline.engine.cards import record_move
from pipeline.engine.errors import AlreadyRunning, EngineError, NothingToRun
from pipeline.engine.locks import has_active_run
from pipeline.engine.planning import (
    board_stages,
    entry_status,
    first_stage,
    kind_path,
    plan_from,
    runnable_recipe,
    stage_by_id,
)
from pipeline.engine.runs import create_run
from pipeline.models import Run
from pipeline.runlog import append_log
from skills.models import StageRecipe

Status = Run.Status
Automation = StageRecipe.Automation


@dataclass(frozen=True)
class Launched:
    run: Run
    pipeline: list[str]
    resumed: bool


class Blocked(EngineError):
    """The card's delivery waits for unfinished dependencies."""

    code = "blocked"

    def __init__(self, blockers: list[Blocker]) -> None:
        super().__init__(blocked_note(tuple(blockers)))
        self.blockers = blockers


def start_card(
    feature: Feature,
    user: User | None,
    *,
    trigger: str = Run.Trigger.PERSON,
    batch_id: int | None = None,
    wait: bool = False,
    resume_stopped: bool = False,
) -> Launched:
    """Start the card's pipeline from its current stage (or resume it from the failed stage).
    Call under the card's lock, inside an engine transaction.

    The pipeline runs the stages of the card kind's path from where the card is (the card
    jumps to the first one with automated work), up to the stop stage. A person's launch
    starts the first stage at once: their click is its approval. A launch without a person
    (`trigger` health_check or pipeline) follows the automation levels and trust rules of a
    stage the chain enters. With `wait` the run is created waiting, the card left where it is,
    to be released by :mod:`pipeline.engine.waiting` (a tree's order). A failed last run in
    the start stage is resumed after its succeeded steps (a stopped one too with
    `resume_stopped`). Raises AlreadyRunning, NothingToRun, or Blocked (delivery waits for
    unfinished dependencies; planning does not).
    """
    if feature.archived_at is not None:
        raise NothingToRun(f"“{feature.title}” is archived: unarchive it first.")
    if has_active_run(feature):
        raise AlreadyRunning(
            f"“{feature.title}” already has a pipeline running; stop it or wait for it to end."
        )
    stages = board_stages(feature.workspace_id, feature.stage.board)
    path = kind_path(feature.workspace, feature.kind)
    current = stage_by_id(stages, feature.stage_id)
    start = first_stage(stages, current, path)
    if start is None:
        raise NothingToRun(_nothing_to_run(feature, stages, current, path))
    blockers = blockers_of([feature.pk]).get(feature.pk, [])
    if blockers and start.delivers and not wait:
        raise Blocked(blockers)
    recipe = runnable_recipe(start)
    assert recipe is not None
    status, note = str(Status.QUEUED), ""
    if trigger != Run.Trigger.PERSON:
        if recipe.automation == Automation.MANUAL:
            raise NothingToRun(f"{start.name} is manual: a person starts its work.")
        status, note = entry_status(start, recipe)
    if wait:
        status, note = str(Status.WAITING), ""
    elif start.pk != current.pk:
        record_move(feature, start, user=user, note="Launched")
    resumable = (Status.FAILED, Status.CANCELLED) if resume_stopped else (Status.FAILED,)
    last = Run.objects.filter(feature=feature).order_by("-created_at", "-id").first()
    resume_from = (
        last
        if last is not None
        and last.status in resumable
        and last.stage_id == start.pk
        and not Run.objects.filter(parent_run=last).exists()
        else None
    )
    # A waiting delivery run is released only once its dependencies are finished, so its plan
    # need not stop before delivery; anything else stops there while they are not.
    held = bool(blockers) and not (wait and start.delivers)
    plan = plan_from(feature.workspace, stages, start, path=path, blocked=held)
    run = create_run(
        feature,
        start,
        pipeline_next=[s.key for s in plan[1:]],
        parent=resume_from,
        user=user,
        status=status,
        note=note,
        carry_from=resume_from,
        trigger=trigger,
        # Resuming a failed run of a batch continues that batch's work.
        batch_id=batch_id if batch_id is not None or resume_from is None else resume_from.batch_id,
    )
    verb = f"Resumed after run #{resume_from.pk} failed" if resume_from else "Launched"
    if trigger == Run.Trigger.HEALTH_CHECK:
        verb += " by a failing health check"
    if batch_id is not None:
        verb += f" in batch #{batch_id}"
    append_log(run.pk, f"{verb}: {' → '.join(s.key for s in plan)}")
    return Launched(run=run, pipeline=[s.key for s in plan], resumed=resume_from is not None)


def _nothing_to_run(
    feature: Feature, stages: list[Stage], current: Stage, path: list[str] | None
) -> str:
    name = current.name
    if path is None:
        return (
            f"Nothing to run: neither {name} nor the stage after it has an automated "
            "recipe. Move the card or add a recipe."
        )
    names = [s.name for s in stages if s.key in path] or ["no stage"]
    kind = Feature.Kind(feature.kind).label.lower()
    return (
        f"Nothing to run: a {kind}'s pipeline here is {' → '.join(names)}, and no stage of it "
        f"with an automated recipe lies ahead of {name}."
    )
