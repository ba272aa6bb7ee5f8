"""Writes to the skills catalog and to stage recipes. Views, the API and the admin call these."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.log import Target
from features.models import Workspace
from pipeline.engine.audit_trail import by_person
from pipeline.models import Run
from skills.catalog import SkillDefinition
from skills.models import Gate, RecipeStep, Skill, StageRecipe
from skills.validation import GateDraft, StepDraft, Validation, validate_recipe

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class SkillError(Exception):
    """A change to a skill or recipe that cannot be made, with a message a person can act on."""


def _skill_target(skill: Skill) -> Target:
    return Target("skill", skill.pk, f"{skill.slug} v{skill.version}")


def _workspaces_using(skill: Skill) -> list[int]:
    """The workspaces whose log hears of a change to this skill: its own, or every one for a
    built-in skill (all of them may use it)."""
    if skill.workspace_id is not None:
        return [skill.workspace_id]
    return list(Workspace.objects.order_by("pk").values_list("pk", flat=True))


def do_set_trust(skill: Skill, trust: str, user: User | None) -> Skill:
    """Vetting is a person's decision: who and when are recorded, and forgotten on withdrawal."""
    if trust not in Skill.Trust.values:
        raise SkillError(f"Unknown trust {trust!r}; use one of {', '.join(Skill.Trust.values)}.")
    if trust != skill.trust:
        for workspace_id in _workspaces_using(skill):
            by_person(
                user,
                workspace_id,
                "skill.vet",
                _skill_target(skill),
                {"trust": {"before": skill.trust, "after": trust}},
            )
    vetted = trust == Skill.Trust.VETTED
    skill.trust = trust
    skill.vetted_by = user if vetted else None
    skill.vetted_at = timezone.now() if vetted else None
    Skill.objects.filter(pk=skill.pk).update(
        trust=skill.trust, vetted_by=skill.vetted_by, vetted_at=skill.vetted_at
    )
    return skill


def do_vet_skill(skill: Skill, user: User) -> Skill:
    return do_set_trust(skill, Skill.Trust.VETTED, user)


def prompt_problem(skill: Skill, prompt: str) -> str:
    allowed = set(((skill.input_schema or {}).get("properties") or {}).keys()) | {"sections"}
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(prompt)} - allowed)
    if unknown:
        return (
            f"Placeholder(s) {', '.join(unknown)} are not inputs of {skill.slug}; "
            f"use {', '.join(sorted(allowed))}."
        )
    return ""


def definition_of(skill: Skill, prompt: str | None = None) -> SkillDefinition:
    """The skill as the catalog would parse it, for a checksum comparable with a synced one."""
    schema = skill.input_schema if isinstance(skill.input_schema, dict) else {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    return SkillDefinition(
        slug=skill.slug,
        name=skill.name,
        description=skill.description,
        output=skill.output,
        artifact_name=skill.artifact_name,
        prompt_template=skill.prompt_template if prompt is None else prompt,
        inputs={
            name: {
                "type": spec.get("type", "string"),
                "required": name in required,
                "doc": spec.get("description", ""),
            }
            for name, spec in properties.items()
            if isinstance(spec, dict)
        },
        sections=list((skill.output_schema or {}).get("sections", [])),
        tags=[str(t) for t in skill.tags or []],
    )


def do_edit_prompt(
    skill: Skill,
    prompt: str,
    user: User | None,
    *,
    trust: str | None = None,
    into: Workspace | None = None,
) -> Skill:
    """Save a new version with this prompt and point the recipe steps that use the skill at it.

    The old version is never changed: past runs keep pointing at theirs. With `into`, a built-in
    skill becomes that workspace's own (the others keep the built-in), and only that
    workspace's recipes move to it.
    """
    problem = prompt_problem(skill, prompt)
    if problem:
        raise SkillError(problem)
    owner_id = skill.workspace_id if skill.workspace_id is not None or into is None else into.pk
    with transaction.atomic():
        top = (
            Skill.objects.select_for_update()
            .filter(Q(workspace_id=owner_id) if owner_id else Q(workspace__isnull=True))
            .filter(slug=skill.slug)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        ) or 0
        forked = owner_id != skill.workspace_id
        new = Skill.objects.create(
            workspace_id=owner_id,
            slug=skill.slug,
            version=top + 1,
            name=skill.name,
            description=skill.description,
            source=skill.source,
            trust=skill.trust,
            # A person who may edit recipes wrote this prompt: the copy is theirs to vouch for.
            vetted_by=user if forked and skill.is_vetted else skill.vetted_by,
            vetted_at=timezone.now() if forked and skill.is_vetted else skill.vetted_at,
            output=skill.output,
            artifact_name=skill.artifact_name,
            prompt_template=prompt,
            input_schema=skill.input_schema,
            output_schema=skill.output_schema,
            tags=skill.tags,
            checksum=definition_of(skill, prompt).checksum,
        )
        if trust is not None:
            do_set_trust(new, trust, user)
        same_skill = (
            Q(skill__workspace_id=skill.workspace_id)
            if skill.workspace_id
            else Q(skill__workspace__isnull=True)
        )
        steps = RecipeStep.objects.filter(same_skill, skill__slug=skill.slug)
        if into is not None:
            steps = steps.filter(recipe__stage__workspace=into)
        steps.update(skill=new)
        for workspace_id in [into.pk] if into is not None else _workspaces_using(skill):
            by_person(
                user,
                workspace_id,
                "recipe.change",
                _skill_target(new),
                {"prompt": {"before": skill.prompt_template, "after": prompt}},
            )
    return new


@dataclass
class RecipeSettings:
    automation: str
    on_fail: str
    provider: str
    model: str
    enabled: bool

    @classmethod
    def of(cls, recipe: StageRecipe) -> RecipeSettings:
        return cls(
            automation=recipe.automation,
            on_fail=recipe.on_fail,
            provider=recipe.provider,
            model=recipe.model,
            enabled=recipe.enabled,
        )


def do_save_recipe(
    recipe: StageRecipe,
    settings: RecipeSettings,
    steps: Sequence[StepDraft] | None = None,
    gates: Sequence[GateDraft] | None = None,
    *,
    user: User | None = None,
) -> Validation:
    """Save a stage's recipe: the one writer for recipes (editor, API, admin).

    `steps` / `gates` None keep them as they are. Nothing is written when validation finds an
    error; changing the steps or gates of a stage with runs in progress is refused too
    (``busy``: those runs read them), while its settings may change at any time. A change by
    `user` is written to the workspace's audit log (recipe.change, with what changed).
    """
    check = validate_recipe(
        recipe,
        automation=settings.automation,
        enabled=settings.enabled,
        provider=settings.provider,
        steps=steps,
        gates=gates,
    )
    if check.errors:
        return check
    with transaction.atomic():
        if recipe.pk is None:  # a stage's first recipe
            recipe = StageRecipe.objects.create(stage=recipe.stage, **vars(settings))
        recipe = StageRecipe.objects.select_for_update().select_related("stage").get(pk=recipe.pk)
        current_steps = [
            StepDraft.of(s) for s in recipe.steps.select_related("skill").order_by("order")
        ]
        current_gates = [GateDraft.of(g) for g in recipe.gates.order_by("order", "id")]
        new_steps = steps is not None and list(steps) != current_steps
        new_gates = gates is not None and list(gates) != current_gates
        if (new_steps or new_gates) and Run.objects.filter(
            stage=recipe.stage, status__in=Run.ACTIVE_STATUSES
        ).exists():
            check.errors.append(
                f"{recipe.stage.name} has runs in progress; change its steps and gates when "
                "they end."
            )
            check.busy = True
            return check
        before = vars(RecipeSettings.of(recipe))
        for name, value in vars(settings).items():
            setattr(recipe, name, value)
        recipe.save()
        changes: dict[str, object] = {
            name: {"before": before[name], "after": value}
            for name, value in vars(settings).items()
            if before[name] != value
        }
        if new_steps and steps is not None:
            changes["steps"] = {
                "before": [s.slug for s in current_steps],
                "after": [s.slug for s in steps],
            }
        if new_gates and gates is not None:
            changes["gates"] = {
                "before": [g.name for g in current_gates],
                "after": [g.name for g in gates],
            }
        if changes:
            by_person(
                user,
                recipe.stage.workspace_id,
                "recipe.change",
                Target("recipe", recipe.pk, f"{recipe.stage.name} recipe"),
                changes,
            )
        if new_steps and steps is not None:
            recipe.steps.all().delete()
            RecipeStep.objects.bulk_create(
                RecipeStep(
                    recipe=recipe,
                    skill=step.skill,
                    order=order,
                    params=step.params,
                    input_mapping=step.input_mapping,
                    output_mapping=step.output_mapping,
                    provider=step.provider,
                    model=step.model,
                    timeout_seconds=step.timeout_seconds,
                    retry_count=step.retry_count,
                )
                for order, step in enumerate(steps, start=1)
                if step.skill is not None
            )
        if new_gates and gates is not None:
            recipe.gates.all().delete()
            Gate.objects.bulk_create(
                Gate(
                    recipe=recipe,
                    order=order,
                    name=gate.name,
                    type=gate.type,
                    config=gate.config,
                    required=gate.required,
                    failure_message=gate.failure_message,
                )
                for order, gate in enumerate(gates)
            )
    return check
