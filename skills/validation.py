"""Recipe validation: what would stop a stage's recipe from running, and what only looks odd.

Errors block a save (editor, API, admin) and fail a run before its first step; warnings are shown
and the recipe saves anyway. The same function checks a saved recipe and a proposed change, so
the editor, the API and the executor can never disagree about what "valid" means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skills.gates import _OPERATORS
from skills.models import Gate, RecipeStep, Skill, StageRecipe

# What pipeline.executor.build_inputs always offers a prompt, besides the documents.
BASE_INPUTS = frozenset({"title", "description", "context", "sections", "feedback"})
ARTIFACT_KINDS = ("document", "file", "url", "pr", "json")


def artifact_key(name: str) -> str:
    """spec.md → spec_md: how build_inputs names a document (kept in step with the executor)."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The change is sound but the stage has runs in progress (a conflict, not bad input).
    busy: bool = False

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "errors": self.errors, "warnings": self.warnings}


@dataclass
class StepDraft:
    """One step as it is, or as someone proposes it; `skill` is None when the slug is unknown."""

    slug: str
    skill: Skill | None
    params: Any = field(default_factory=dict)
    input_mapping: Any = field(default_factory=dict)
    output_mapping: Any = field(default_factory=dict)
    provider: str = ""
    model: str = ""
    timeout_seconds: int = 300
    retry_count: int = 2

    @classmethod
    def of(cls, step: RecipeStep) -> StepDraft:
        return cls(
            slug=step.skill.slug,
            skill=step.skill,
            params=step.params,
            input_mapping=step.input_mapping,
            output_mapping=step.output_mapping,
            provider=step.provider,
            model=step.model,
            timeout_seconds=step.timeout_seconds,
            retry_count=step.retry_count,
        )


@dataclass
class GateDraft:
    name: str
    type: str
    config: Any = field(default_factory=dict)
    required: bool = True
    failure_message: str = ""

    @classmethod
    def of(cls, gate: Gate) -> GateDraft:
        return cls(gate.name, gate.type, gate.config, gate.required, gate.failure_message)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def gate_problem(gate: GateDraft) -> str:
    """Why this gate could never be checked as meant; empty when its config is sound."""
    config = gate.config
    if gate.type not in Gate.Type.values:
        return f"unknown type {gate.type!r}; use one of {', '.join(Gate.Type.values)}"
    if not isinstance(config, Mapping):
        return "its config must be a JSON object"
    if gate.type == Gate.Type.FILE_EXISTS:
        if not (_is_text(config.get("pattern")) or _is_text(config.get("file"))):
            return 'file_exists needs a "pattern" (e.g. "*.md") or a "file"'
    elif gate.type == Gate.Type.CONTENT_CHECK:
        sections = config.get("required_sections")
        if not _is_text(config.get("file")):
            return 'content_check needs the "file" whose sections it checks'
        if not isinstance(sections, list) or not sections or not all(map(_is_text, sections)):
            return 'content_check needs "required_sections": a list of headings'
    elif gate.type == Gate.Type.ARTIFACT_EXISTS:
        name, kind = config.get("name"), config.get("kind")
        if not (_is_text(name) or _is_text(kind)):
            return 'artifact_exists needs a "name" or a "kind"'
        if kind is not None and kind not in ARTIFACT_KINDS:
            return f"kind {kind!r} is not one of {', '.join(ARTIFACT_KINDS)}"
    elif gate.type == Gate.Type.METRIC_THRESHOLD:
        threshold = config.get("threshold")
        if not _is_text(config.get("metric")):
            return 'metric_threshold needs the "metric" it compares'
        if config.get("operator", ">=") not in _OPERATORS:
            return f"operator must be one of {' '.join(_OPERATORS)}"
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            return 'metric_threshold needs a numeric "threshold"'
    return ""


def _mapping_problem(mapping: Any, what: str) -> str:
    if not isinstance(mapping, Mapping):
        return f"{what} must be a JSON object of names"
    if not all(_is_text(k) and _is_text(v) for k, v in mapping.items()):
        return f"{what} maps names to names (strings)"
    return ""


def _documents_before(recipe: StageRecipe) -> set[str]:
    """Input names the documents of earlier stages on the same board give a prompt."""
    stage = recipe.stage
    slugs = RecipeStep.objects.filter(
        recipe__stage__workspace_id=stage.workspace_id,
        recipe__stage__board=stage.board,
        recipe__stage__position__lt=stage.position,
    ).values_list("skill__artifact_name", flat=True)
    return {artifact_key(name) for name in slugs if name}


def validate_recipe(
    recipe: StageRecipe,
    *,
    automation: str | None = None,
    enabled: bool | None = None,
    provider: str | None = None,
    steps: Sequence[StepDraft] | None = None,
    gates: Sequence[GateDraft] | None = None,
    check_trust: bool = True,
) -> Validation:
    """The recipe as it would be with these changes (None: as saved).

    `check_trust=False` is for a run about to execute: the engine already holds a run that uses
    unvetted skills until a person starts it, so by then a person has taken responsibility.
    """
    if steps is None:
        steps = [StepDraft.of(s) for s in recipe.steps.select_related("skill").order_by("order")]
    if gates is None:
        gates = [GateDraft.of(g) for g in recipe.gates.all()]
    automation = automation or recipe.automation
    enabled = recipe.enabled if enabled is None else enabled
    provider = recipe.provider if provider is None else provider
    result = Validation()
    for step in steps:
        if step.skill is None:
            result.errors.append(f"No skill {step.slug!r}: sync the library or add it first.")
    if check_trust and automation == StageRecipe.Automation.FULLY_AUTO:
        for skill in (s.skill for s in steps if s.skill is not None):
            if skill.trust != Skill.Trust.VETTED:
                result.errors.append(
                    f"{skill.slug} v{skill.version} is {skill.trust}: fully_auto recipes may only "
                    "use vetted skills (vet it, or choose auto_notify or human_approval)."
                )
    known = set(BASE_INPUTS)
    if any(s.input_mapping for s in steps):  # spare the executor's pre-run check a query
        known |= _documents_before(recipe)
    for number, step in enumerate(steps, start=1):
        for value, what in (
            (step.input_mapping, "input mapping"),
            (step.output_mapping, "output mapping"),
        ):
            problem = _mapping_problem(value, what)
            if problem:
                result.errors.append(f"Step {number} ({step.slug}): {problem}.")
        if not isinstance(step.params, Mapping):
            result.errors.append(f"Step {number} ({step.slug}): params must be a JSON object.")
        if isinstance(step.input_mapping, Mapping) and not _mapping_problem(step.input_mapping, ""):
            for target, source in step.input_mapping.items():
                if source not in known:
                    result.errors.append(
                        f"Step {number} ({step.slug}): input {target!r} maps from {source!r}, "
                        f"which is not a known input; use one of {', '.join(sorted(known))}."
                    )
            known |= set(step.input_mapping)
        if step.skill is not None and step.skill.artifact_name:
            known.add(artifact_key(step.skill.artifact_name))
    for number, gate in enumerate(gates, start=1):
        if not gate.name.strip():
            result.errors.append(f"Gate {number}: give it a name.")
        problem = gate_problem(gate)
        if problem:
            result.errors.append(f"Gate {number} ({gate.name or gate.type}): {problem}.")
    if not any(g.required for g in gates):
        result.warnings.append("No required gate: the card advances whatever this stage produces.")
    if enabled and automation != StageRecipe.Automation.MANUAL and not steps:
        result.warnings.append("No steps: nothing runs in this stage.")
    for name in {provider, *(s.provider for s in steps)} - {""}:
        if not _provider_available(name):
            result.warnings.append(f"Provider {name!r} is not available on this server.")
    return result


def _provider_available(name: str) -> bool:
    from pipeline.providers import get_provider
    from pipeline.providers.base import PermanentProviderError

    try:
        get_provider(name)
    except PermanentProviderError:
        return False
    return True


def blocking_errors(
    recipe: StageRecipe,
    *,
    steps: Sequence[RecipeStep] | None = None,
    gates: Sequence[Gate] | None = None,
) -> list[str]:
    """What stops a run of this recipe now (the executor's check before the first step).
    `steps` (with their skills) and `gates` are the recipe's, when the caller read them
    already; None reads them."""
    return validate_recipe(
        recipe,
        steps=None if steps is None else [StepDraft.of(s) for s in steps],
        gates=None if gates is None else [GateDraft.of(g) for g in gates],
        check_trust=False,
    ).errors
