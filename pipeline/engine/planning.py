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


def stage_after(stages: list[Stage], stage_id: int) -> Stage | None:
    index = next(i for i, s in enumerate(stages) if s.pk == stage_id)
    return stages[index + 1] if index + 1 < len(stages) else None


def stage_by_id(stages: list[Stage], stage_id: int) -> Stage:
    return next(s for s in stages if s.pk == stage_id)
