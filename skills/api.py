"""/api/skills and /api/recipes: the skills catalog and each stage's recipe.

Anyone in a workspace reads them; only its owners and admins vet skills and change recipes.
Built-in skills (no workspace) are shared by every workspace, so only a site administrator
changes them. A new prompt is a new skill version: past runs keep pointing at theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from django.contrib.auth.models import User
from django.db import IntegrityError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from ninja import Router, Schema
from pydantic import AfterValidator, Field, StringConstraints

from features.access import get_workspace, workspaces_for
from features.api.base import (
    NO_NUL,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiError,
    Id,
    Input,
    Slug,
    Text,
    caller,
    clean_text,
    require_site_admin,
    responses,
)
from skills import validation
from skills.actions import RecipeSettings, do_edit_prompt, do_save_recipe, do_set_trust
from skills.catalog import (
    LIBRARY_DIR,
    SkillFormatError,
    latest_skill,
    load_library,
    sync_definitions,
)
from skills.models import Skill, StageRecipe
from skills.validation import StepDraft

router = Router()

Trust = Literal["vetted", "community", "experimental"]
Automation = Literal["fully_auto", "auto_notify", "human_approval", "manual"]
OnFail = Literal["stay", "revert", "create_questions", "review_required"]
Prompt = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50_000),
    AfterValidator(clean_text),
    Field(json_schema_extra=NO_NUL),
]
ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]*$", max_length=30)]
ModelName = Annotated[Text, StringConstraints(max_length=100)]
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# --- Schemas -----------------------------------------------------------------------------------


class SkillOut(Schema):
    id: int
    slug: str
    version: int
    latest: bool
    name: str
    description: str
    workspace: str | None = Field(description="Empty for built-in skills.")
    source: str
    trust: str
    output: str
    artifact_name: str
    tags: list[str]
    checksum: str
    vetted_by: str | None
    vetted_at: datetime | None
    created_at: datetime


class SkillDetail(SkillOut):
    prompt_template: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class SkillUpdate(Input):
    trust: Trust | None = None
    prompt: Prompt | None = Field(default=None, description="A new prompt makes a new version.")


class SyncedSkill(Schema):
    id: int
    slug: str
    version: int
    created: bool


class SyncOut(Schema):
    created: int
    skills: list[SyncedSkill]


class StepOut(Schema):
    order: int
    skill: str
    skill_id: int
    skill_version: int
    trust: str
    timeout_seconds: int
    retry_count: int


class RecipeGateOut(Schema):
    name: str
    type: str
    required: bool
    config: dict[str, Any]
    failure_message: str


class RecipeOut(Schema):
    id: int
    workspace: str
    stage: str
    stage_name: str
    automation: str
    on_fail: str
    provider: str
    model: str
    enabled: bool
    updated_at: datetime
    steps: list[StepOut]
    gates: list[RecipeGateOut]


class RecipeUpdate(Input):
    automation: Automation | None = None
    on_fail: OnFail | None = None
    provider: ProviderName | None = Field(default=None, description="Empty: the workspace default.")
    model: ModelName | None = None
    enabled: bool | None = None
    steps: list[Slug] | None = Field(
        default=None,
        max_length=20,
        description="Skill slugs in order; each uses its latest version.",
    )


class ValidationOut(Schema):
    valid: bool
    errors: list[str]
    warnings: list[str]


# --- Skills ------------------------------------------------------------------------------------


def _visible_skills(user: User) -> QuerySet[Skill]:
    return Skill.objects.filter(
        Q(workspace__isnull=True) | Q(workspace__in=workspaces_for(user))
    ).select_related("workspace", "vetted_by")


def _latest_versions(skills: list[Skill]) -> dict[tuple[int | None, str], int]:
    keys = {(s.workspace_id, s.slug) for s in skills}
    top: dict[tuple[int | None, str], int] = {}
    rows = Skill.objects.filter(slug__in={slug for _, slug in keys}).values_list(
        "workspace_id", "slug", "version"
    )
    for workspace_id, slug, version in rows:
        key = (workspace_id, slug)
        if key in keys:
            top[key] = max(top.get(key, 0), version)
    return top


def skill_out(skill: Skill, latest: bool, *, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": skill.pk,
        "slug": skill.slug,
        "version": skill.version,
        "latest": latest,
        "name": skill.name,
        "description": skill.description,
        "workspace": skill.workspace.slug if skill.workspace else None,
        "source": skill.source,
        "trust": skill.trust,
        "output": skill.output,
        "artifact_name": skill.artifact_name,
        "tags": [str(t) for t in skill.tags] if isinstance(skill.tags, list) else [],
        "checksum": skill.checksum,
        "vetted_by": skill.vetted_by.get_username() if skill.vetted_by else None,
        "vetted_at": skill.vetted_at,
        "created_at": skill.created_at,
    }
    if detail:
        data["prompt_template"] = skill.prompt_template
        data["input_schema"] = skill.input_schema if isinstance(skill.input_schema, dict) else {}
        data["output_schema"] = skill.output_schema if isinstance(skill.output_schema, dict) else {}
    return data


def _skill_for(user: User, pk: int) -> Skill:
    skill = _visible_skills(user).filter(pk=pk).first()
    if skill is None:
        raise Http404("No such skill.")
    return skill


def _is_latest(skill: Skill) -> bool:
    return not Skill.objects.filter(
        workspace=skill.workspace, slug=skill.slug, version__gt=skill.version
    ).exists()


@router.get("/skills", response=responses({200: list[SkillOut]}, READ_ERRORS))
def list_skills(
    request: HttpRequest,
    workspace: Slug | None = None,
    all_versions: bool = False,
) -> list[dict[str, Any]]:
    """Built-in skills and your workspaces' own (or one workspace's), latest versions first."""
    user = caller(request)
    skills = _visible_skills(user)
    if workspace:
        own = get_workspace(user, workspace)[0]
        skills = skills.filter(Q(workspace__isnull=True) | Q(workspace=own))
    rows = list(skills.order_by("slug", "workspace_id", "-version"))
    top = _latest_versions(rows)
    return [
        skill_out(s, top.get((s.workspace_id, s.slug)) == s.version)
        for s in rows
        if all_versions or top.get((s.workspace_id, s.slug)) == s.version
    ]


@router.post("/skills/sync", response=responses({200: SyncOut}, WRITE_ERRORS))
def sync_skills(request: HttpRequest) -> dict[str, Any]:
    """Read skills/library (every folder first: one bad file imports nothing) into the built-in
    skills every workspace shares (site administrators)."""
    require_site_admin(caller(request))
    try:
        definitions = load_library()
    except SkillFormatError as exc:
        # Name the file as the library knows it, not by its path on the server.
        where = (
            exc.path.relative_to(LIBRARY_DIR) if exc.path.is_relative_to(LIBRARY_DIR) else exc.path
        )
        reason = str(exc).removeprefix(f"{exc.path}:{exc.line}: ")
        message = f"{where}:{exc.line}: {reason}"
        raise ApiError(422, "skill_format", message, field=str(where)) from exc
    before = set(Skill.objects.filter(workspace__isnull=True).values_list("pk", flat=True))
    synced = sync_definitions(definitions, workspace=None, trust=Skill.Trust.VETTED)
    rows = [
        {"id": s.pk, "slug": s.slug, "version": s.version, "created": s.pk not in before}
        for s in synced
    ]
    return {"created": sum(1 for r in rows if r["created"]), "skills": rows}


@router.get("/skills/{id}", response=responses({200: SkillDetail}, READ_ERRORS))
def get_skill(request: HttpRequest, id: Id) -> dict[str, Any]:
    """One skill version with its prompt and input/output schemas."""
    skill = _skill_for(caller(request), id)
    return skill_out(skill, _is_latest(skill), detail=True)


def _check_can_manage(user: User, skill: Skill) -> None:
    if skill.workspace is not None:
        get_workspace(user, skill.workspace.slug, admin=True)
    elif not user.is_superuser:
        raise ApiError(
            403,
            "forbidden",
            "Built-in skills are shared by every workspace: only a site administrator "
            "changes them. Change a workspace's own skill, or its recipes, instead.",
        )


def _check_placeholders(skill: Skill, prompt: str) -> None:
    allowed = set(((skill.input_schema or {}).get("properties") or {}).keys()) | {"sections"}
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(prompt)} - allowed)
    if unknown:
        raise ApiError(
            422,
            "invalid",
            f"Placeholder(s) {', '.join(unknown)} are not inputs of {skill.slug}; "
            f"use {', '.join(sorted(allowed))}.",
            field="prompt",
        )


@router.patch("/skills/{id}", response=responses({200: SkillDetail}, WRITE_ERRORS))
def update_skill(request: HttpRequest, id: Id, payload: SkillUpdate) -> dict[str, Any]:
    """Vet a skill (trust), or give it a new prompt, which saves a new version."""
    user = caller(request)
    skill = _skill_for(user, id)
    _check_can_manage(user, skill)
    if payload.prompt is not None and payload.prompt != skill.prompt_template:
        _check_placeholders(skill, payload.prompt)
        try:
            skill = do_edit_prompt(skill, payload.prompt, user, trust=payload.trust)
        except IntegrityError as exc:
            raise ApiError(
                409, "conflict", "Someone saved a new version at the same time; try again."
            ) from exc
    elif payload.trust is not None:
        do_set_trust(skill, payload.trust, user)
    skill = _skill_for(user, skill.pk)
    return skill_out(skill, _is_latest(skill), detail=True)


# --- Recipes -----------------------------------------------------------------------------------


def _recipes(user: User) -> QuerySet[StageRecipe]:
    return StageRecipe.objects.filter(stage__workspace__in=workspaces_for(user)).select_related(
        "stage", "stage__workspace"
    )


def _recipe_for(user: User, pk: int, *, admin: bool = False) -> StageRecipe:
    recipe = _recipes(user).filter(pk=pk).first()
    if recipe is None:
        raise Http404("No such recipe.")
    get_workspace(user, recipe.stage.workspace.slug, admin=admin)
    return recipe


def recipe_out(recipe: StageRecipe) -> dict[str, Any]:
    return {
        "id": recipe.pk,
        "workspace": recipe.stage.workspace.slug,
        "stage": recipe.stage.key,
        "stage_name": recipe.stage.name,
        "automation": recipe.automation,
        "on_fail": recipe.on_fail,
        "provider": recipe.provider,
        "model": recipe.model,
        "enabled": recipe.enabled,
        "updated_at": recipe.updated_at,
        "steps": [
            {
                "order": step.order,
                "skill": step.skill.slug,
                "skill_id": step.skill_id,
                "skill_version": step.skill.version,
                "trust": step.skill.trust,
                "timeout_seconds": step.timeout_seconds,
                "retry_count": step.retry_count,
            }
            for step in recipe.steps.select_related("skill").order_by("order")
        ],
        "gates": [
            {
                "name": gate.name,
                "type": gate.type,
                "required": gate.required,
                "config": gate.config if isinstance(gate.config, dict) else {},
                "failure_message": gate.failure_message,
            }
            for gate in recipe.gates.all()
        ],
    }


@dataclass
class RecipeCheck:
    skills: list[Skill]
    steps: list[StepDraft] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"valid": not self.errors, "errors": self.errors, "warnings": self.warnings}


def check_recipe(recipe: StageRecipe, change: RecipeUpdate | None = None) -> RecipeCheck:
    """The recipe as it would be after `change`: errors refuse it, warnings only inform."""
    change = change or RecipeUpdate()
    workspace = recipe.stage.workspace
    steps: list[StepDraft] | None = None
    if change.steps is not None:
        # A skill that stays keeps its step's settings, as _replace_steps will keep them.
        kept = {s.skill.slug: s for s in recipe.steps.select_related("skill")}
        steps = []
        for slug in change.steps:
            try:
                skill: Skill | None = latest_skill(slug, workspace)
            except Skill.DoesNotExist:
                skill = None
            old = kept.get(slug)
            draft = StepDraft.of(old) if old is not None else StepDraft(slug=slug, skill=skill)
            draft.skill = skill
            steps.append(draft)
    else:
        steps = [StepDraft.of(s) for s in recipe.steps.select_related("skill").order_by("order")]
    result = validation.validate_recipe(
        recipe,
        automation=change.automation,
        enabled=change.enabled,
        provider=change.provider,
        steps=steps,
    )
    return RecipeCheck(
        skills=[s.skill for s in steps if s.skill is not None],
        steps=steps,
        errors=result.errors,
        warnings=result.warnings,
    )


@router.get("/recipes", response=responses({200: list[RecipeOut]}, READ_ERRORS))
def list_recipes(request: HttpRequest, workspace: Slug | None = None) -> list[dict[str, Any]]:
    """Stage recipes of your workspaces (or one of them), in board order."""
    user = caller(request)
    recipes = _recipes(user)
    if workspace:
        recipes = recipes.filter(stage__workspace=get_workspace(user, workspace)[0])
    ordered = recipes.order_by("stage__workspace__name", "stage__board", "stage__position")
    return [recipe_out(r) for r in ordered.prefetch_related("gates")]


@router.get("/recipes/{id}", response=responses({200: RecipeOut}, READ_ERRORS))
def get_recipe(request: HttpRequest, id: Id) -> dict[str, Any]:
    return recipe_out(_recipe_for(caller(request), id))


@router.patch("/recipes/{id}", response=responses({200: RecipeOut}, WRITE_ERRORS))
def update_recipe(request: HttpRequest, id: Id, payload: RecipeUpdate) -> dict[str, Any]:
    """Change a recipe (admins). A step naming no known skill is a 404; a recipe that validation
    finds errors in is refused with 409 (invalid_recipe), its errors in the message."""
    recipe = _recipe_for(caller(request), id, admin=True)
    check = check_recipe(recipe, payload)
    found = {skill.slug for skill in check.skills}
    missing = [slug for slug in payload.steps or [] if slug not in found]
    if missing:
        raise ApiError(
            404,
            "not_found",
            f"No skill {missing[0]!r}: sync the library or add it first.",
            field="steps",
        )
    if check.errors:
        # The request is well formed; the recipe it would make conflicts with the rules
        # (an unvetted skill in a fully automatic recipe, a gate that cannot be checked, ...).
        raise ApiError(409, "invalid_recipe", " ".join(check.errors), field="steps")
    current = RecipeSettings.of(recipe)
    settings = RecipeSettings(
        **{
            name: getattr(current, name)
            if getattr(payload, name) is None
            else getattr(payload, name)
            for name in vars(current)
        }
    )
    saved = do_save_recipe(
        recipe,
        settings,
        check.steps if payload.steps is not None else None,
        user=caller(request),
    )
    if saved.busy:
        raise ApiError(409, "stage_busy", " ".join(saved.errors), field="steps")
    if saved.errors:
        raise ApiError(409, "invalid_recipe", " ".join(saved.errors), field="steps")
    return recipe_out(_recipe_for(caller(request), recipe.pk))


@router.post("/recipes/{id}/validate", response=responses({200: ValidationOut}, WRITE_ERRORS))
def validate_recipe(
    request: HttpRequest, id: Id, payload: RecipeUpdate | None = None
) -> dict[str, Any]:
    """Check the recipe, or the recipe as a proposed change would make it, without saving."""
    recipe = _recipe_for(caller(request), id)
    return check_recipe(recipe, payload).as_dict()
