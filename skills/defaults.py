"""The recipes and gates every new workspace starts with, per stage template."""

from __future__ import annotations

from dataclasses import dataclass

from features.models import Workspace
from skills.catalog import latest_skill, load_library, sync_definitions
from skills.models import Gate, RecipeStep, Skill, StageRecipe


@dataclass(frozen=True)
class DefaultRecipe:
    skills: tuple[str, ...]
    automation: str = StageRecipe.Automation.FULLY_AUTO


_DELIVERY = {
    "spec": DefaultRecipe(("write-spec",)),
    "spec-review": DefaultRecipe(("review-spec", "generate-tasks")),
    "qa": DefaultRecipe(("qa-report",)),
    "final-review": DefaultRecipe(("final-review",)),
}
_PRODUCT = {
    "inbox": DefaultRecipe(("extract-research",)),
    "discovery": DefaultRecipe(("synthesize-discovery",)),
    "prd": DefaultRecipe(("write-prd",)),
    "design": DefaultRecipe(("design-review",)),
    "prototype": DefaultRecipe(("prototype-notes",)),
    "validate": DefaultRecipe(("jury-validate",)),
    # A story's path on this template is Tickets alone: its acceptance criteria, then the
    # subtasks made from them (an epic's tickets are its stories, with criteria of their own).
    "tickets": DefaultRecipe(("write-acceptance-criteria", "generate-tasks")),
}
_QUICK = {
    "architecture": DefaultRecipe(("write-architecture",)),
    "tasks": DefaultRecipe(("generate-tasks",)),
}
DEFAULT_RECIPES: dict[str, dict[str, DefaultRecipe]] = {
    "delivery": _DELIVERY,
    "product": _PRODUCT,
    "quick": _QUICK,
}

JURY_PASS_SCORE = 70


def ensure_builtin_skills() -> None:
    """Built-in skills are vetted: they ship with Runway and fully automatic recipes use them."""
    sync_definitions(load_library(), workspace=None, trust=Skill.Trust.VETTED)


def gates_for(skill: Skill) -> list[Gate]:
    if skill.output == Skill.Output.TASKS:
        return [
            Gate(
                name=f"{skill.artifact_name} exists",
                type=Gate.Type.ARTIFACT_EXISTS,
                config={"name": skill.artifact_name},
                failure_message="No task list was produced.",
            )
        ]
    sections = list(skill.output_schema.get("sections", []))
    gates = [
        Gate(
            name=f"{skill.artifact_name} has its sections",
            type=Gate.Type.CONTENT_CHECK,
            config={"file": skill.artifact_name, "required_sections": sections},
            failure_message=f"{skill.artifact_name} is missing required sections.",
        )
    ]
    if skill.output == Skill.Output.SCORE:
        gates.append(
            Gate(
                name=f"jury score ≥ {JURY_PASS_SCORE}",
                type=Gate.Type.METRIC_THRESHOLD,
                config={"metric": "jury_score", "operator": ">=", "threshold": JURY_PASS_SCORE},
                failure_message=f"The jury scored this below {JURY_PASS_SCORE}.",
            )
        )
    return gates


def install_default_recipes(workspace: Workspace) -> None:
    ensure_builtin_skills()
    for stage in workspace.stages.all():
        default = DEFAULT_RECIPES.get(workspace.template, {}).get(stage.key)
        if default is None or hasattr(stage, "recipe"):
            continue
        recipe = StageRecipe.objects.create(stage=stage, automation=default.automation)
        gates: list[Gate] = []
        for order, slug in enumerate(default.skills, start=1):
            skill = latest_skill(slug)
            RecipeStep.objects.create(recipe=recipe, skill=skill, order=order)
            gates.extend(gates_for(skill))
        for order, gate in enumerate(gates):
            gate.recipe = recipe
            gate.order = order
        Gate.objects.bulk_create(gates)
