"""Planning: which stages a pipeline runs, and how a run starts when automation enters a stage.

Pure reads of the workspace's stages and recipes; nothing here writes.
"""

from __future__ import annotations

from django.db.models import Count, Q

from features.models import Stage, Workspace
from pipeline.models import Run
from skills.models import Skill, StageRecipe

Status = Run.Status
Automation = StageRecipe.Automation


def board_stages(workspace_id: int, board: str | None) -> list[Stage]:
    """The board's stages in order (None: every board's, each board in order), each with its
    recipe, step count and how many of its skills nobody vetted (one query)."""
    stages = Stage.objects.filter(workspace_id=workspace_id)
    if board is not None:
        stages = stages.filter(board=board)
    return list(
        stages.select_related("recipe")
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


def kind_path(workspace: Workspace, kind: str) -> list[str] | None:
    """The stage keys a kind of card runs through (Workspace.kind_stages), or None: the whole
    board. A story's default path plans (acceptance criteria, subtasks) and stops for people."""
    path = (workspace.kind_stages or {}).get(kind)
    return [str(key) for key in path] if isinstance(path, list) else None


def on_path(stage: Stage, path: list[str] | None) -> bool:
    return path is None or stage.key in path


def plan_from(
    workspace: Workspace,
    stages: list[Stage],
    start: Stage,
    *,
    path: list[str] | None = None,
    blocked: bool = False,
) -> list[Stage]:
    """The stages a pipeline starting at `start` runs, in order (start included).

    Stages not on the card kind's `path` are skipped (the card jumps over them). The chain
    halts at the workspace's stop stage (when it lies ahead), at a stage with no automated
    recipe or a manual one, at the end of the board, and, for a card still `blocked` by
    unfinished dependencies, before the first delivery stage: planning never waits for
    dependencies, delivery does.
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
        if not on_path(stage, path):
            continue
        if blocked and stage.delivers:
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


def first_stage(stages: list[Stage], current: Stage, path: list[str] | None) -> Stage | None:
    """Where a launch starts: the card's stage if it has automated work on the kind's path,
    else the first stage ahead that does (the card jumps there), else None. Without a path
    only the very next stage is looked at, as a launch from a column before automation."""
    if on_path(current, path) and runnable_recipe(current) is not None:
        return current
    index = next(i for i, s in enumerate(stages) if s.pk == current.pk)
    for stage in stages[index + 1 :]:
        if not on_path(stage, path):
            continue
        return stage if runnable_recipe(stage) is not None else None
    return None


def next_stage(stages: list[Stage], run: Run) -> tuple[Stage | None, bool]:
    """Where a run's card goes once its result stands, and whether its chain goes on there.

    The chain goes on to the first stage in ``pipeline_next`` (which may jump over stages the
    kind's path skips); at the end of the chain the card moves to the board's next stage and
    stops there for people. (None, False) at the end of the board.
    """
    current = stage_by_id(stages, run.stage_id)
    if run.pipeline_next:
        key = run.pipeline_next[0]
        ahead = next((s for s in stages if s.key == key and s.position > current.position), None)
        if ahead is not None:
            return ahead, True
    return stage_after(stages, run.stage_id), False


def stage_after(stages: list[Stage], stage_id: int) -> Stage | None:
    index = next(i for i, s in enumerate(stages) if s.pk == stage_id)
    return stages[index + 1] if index + 1 < len(stages) else None


def stage_by_id(stages: list[Stage], stage_id: int) -> Stage:
    return next(s for s in stages if s.pk == stage_id)
