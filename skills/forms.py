"""The recipe editor's form: a draft of the whole recipe that round-trips through POST.

Adding, removing and reordering steps or gates re-renders the draft without saving; JSON fields
are kept as typed, so a typo is shown back next to its error instead of being lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from config.jsonlimits import loads_limited
from features.models import Workspace
from skills.actions import RecipeSettings
from skills.catalog import latest_skill
from skills.models import Gate, Skill, StageRecipe
from skills.validation import GateDraft, StepDraft

MAX_ROWS = 20
MAX_TIMEOUT_SECONDS = 86_400
MAX_RETRIES = 10


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if value else "{}"


@dataclass
class StepRow:
    slug: str = ""
    skill_id: str = ""
    params: str = "{}"
    input_mapping: str = "{}"
    output_mapping: str = "{}"
    provider: str = ""
    model: str = ""
    timeout_seconds: str = "300"
    retry_count: str = "2"
    skill: Skill | None = None


@dataclass
class GateRow:
    name: str = ""
    type: str = Gate.Type.CONTENT_CHECK
    config: str = "{}"
    required: bool = True
    failure_message: str = ""


@dataclass
class RecipeDraft:
    automation: str = StageRecipe.Automation.HUMAN_APPROVAL
    on_fail: str = StageRecipe.OnFail.STAY
    provider: str = ""
    model: str = ""
    enabled: bool = True
    steps: list[StepRow] = field(default_factory=list)
    gates: list[GateRow] = field(default_factory=list)


def draft_from_recipe(recipe: StageRecipe) -> RecipeDraft:
    if recipe.pk is None:
        return RecipeDraft()
    return RecipeDraft(
        automation=recipe.automation,
        on_fail=recipe.on_fail,
        provider=recipe.provider,
        model=recipe.model,
        enabled=recipe.enabled,
        steps=[
            StepRow(
                slug=s.skill.slug,
                skill_id=str(s.skill_id),
                params=_json_text(s.params),
                input_mapping=_json_text(s.input_mapping),
                output_mapping=_json_text(s.output_mapping),
                provider=s.provider,
                model=s.model,
                timeout_seconds=str(s.timeout_seconds),
                retry_count=str(s.retry_count),
                skill=s.skill,
            )
            for s in recipe.steps.select_related("skill").order_by("order")
        ],
        gates=[
            GateRow(g.name, g.type, _json_text(g.config), g.required, g.failure_message)
            for g in recipe.gates.all()
        ],
    )


def _count(post: QueryDict, name: str) -> int:
    try:
        return max(0, min(int(post.get(name, "0")), MAX_ROWS))
    except ValueError:
        return 0


def draft_from_post(post: QueryDict) -> RecipeDraft:
    def text(name: str, default: str = "") -> str:
        return str(post.get(name, default)).strip()

    draft = RecipeDraft(
        automation=text("automation"),
        on_fail=text("on_fail"),
        provider=text("provider")[:30],
        model=text("model")[:100],
        enabled=post.get("enabled") == "on",
    )
    for i in range(_count(post, "step_count")):
        p = f"step-{i}-"
        draft.steps.append(
            StepRow(
                slug=text(p + "skill"),
                skill_id=text(p + "skill_id"),
                params=text(p + "params", "{}"),
                input_mapping=text(p + "input_mapping", "{}"),
                output_mapping=text(p + "output_mapping", "{}"),
                provider=text(p + "provider")[:30],
                model=text(p + "model")[:100],
                timeout_seconds=text(p + "timeout_seconds", "300"),
                retry_count=text(p + "retry_count", "2"),
            )
        )
    for i in range(_count(post, "gate_count")):
        p = f"gate-{i}-"
        draft.gates.append(
            GateRow(
                name=text(p + "name")[:120],
                type=text(p + "type"),
                config=text(p + "config", "{}"),
                required=post.get(p + "required") == "on",
                failure_message=text(p + "failure_message")[:300],
            )
        )
    return draft


def apply_op(draft: RecipeDraft, op: str) -> None:
    """add-step, add-gate, remove-step:N, remove-gate:N, up:N, down:N (N: 0-based row)."""
    verb, _, arg = op.partition(":")
    index = int(arg) if arg.isascii() and arg.isdigit() else -1
    if verb == "add-step" and len(draft.steps) < MAX_ROWS:
        draft.steps.append(StepRow())
    elif verb == "add-gate" and len(draft.gates) < MAX_ROWS:
        draft.gates.append(GateRow())
    elif verb == "remove-step" and 0 <= index < len(draft.steps):
        del draft.steps[index]
    elif verb == "remove-gate" and 0 <= index < len(draft.gates):
        del draft.gates[index]
    elif verb in ("up", "down"):
        other = index - 1 if verb == "up" else index + 1
        if 0 <= index < len(draft.steps) and 0 <= other < len(draft.steps):
            draft.steps[index], draft.steps[other] = draft.steps[other], draft.steps[index]


def _resolve(row: StepRow, workspace: Workspace) -> Skill | None:
    """Keep the version a step already uses; a newly chosen skill starts at its latest."""
    if re.fullmatch(r"[0-9]{1,18}", row.skill_id):
        pinned = Skill.objects.filter(pk=int(row.skill_id), slug=row.slug).first()
        if pinned is not None and pinned.workspace_id in (None, workspace.pk):
            return pinned
    try:
        return latest_skill(row.slug, workspace)
    except Skill.DoesNotExist:
        return None


def _json(raw: str, where: str, errors: list[str]) -> Any:
    try:
        return loads_limited(raw or "{}", max_depth=JSON_MAX_DEPTH)
    except json.JSONDecodeError as exc:
        errors.append(f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}).")
    except ValueError as exc:
        errors.append(f"{where}: {exc}")
    return {}


# Step params and mappings are small settings objects: a few levels are plenty.
JSON_MAX_DEPTH = 8


def _number(raw: str, where: str, low: int, high: int, errors: list[str]) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        errors.append(f"{where} must be a whole number from {low} to {high}.")
        return low
    return value


@dataclass
class ParsedDraft:
    settings: RecipeSettings
    steps: list[StepDraft]
    gates: list[GateDraft]
    errors: list[str]


def parse_draft(draft: RecipeDraft, workspace: Workspace) -> ParsedDraft:
    """The draft as the validator and do_save_recipe take it, plus what could not be read."""
    errors: list[str] = []
    if draft.automation not in StageRecipe.Automation.values:
        errors.append("Choose an automation level.")
    if draft.on_fail not in StageRecipe.OnFail.values:
        errors.append("Choose what happens when a gate fails.")
    steps = []
    for n, row in enumerate(draft.steps, start=1):
        where = f"Step {n}"
        row.skill = _resolve(row, workspace) if row.slug else None
        if not row.slug:
            errors.append(f"{where}: choose a skill.")
            continue
        steps.append(
            StepDraft(
                slug=row.slug,
                skill=row.skill,
                params=_json(row.params, f"{where} params", errors),
                input_mapping=_json(row.input_mapping, f"{where} input mapping", errors),
                output_mapping=_json(row.output_mapping, f"{where} output mapping", errors),
                provider=row.provider,
                model=row.model,
                timeout_seconds=_number(
                    row.timeout_seconds, f"{where} timeout", 1, MAX_TIMEOUT_SECONDS, errors
                ),
                retry_count=_number(row.retry_count, f"{where} retries", 0, MAX_RETRIES, errors),
            )
        )
    gates = [
        GateDraft(
            name=row.name,
            type=row.type,
            config=_json(row.config, f"Gate {n} config", errors),
            required=row.required,
            failure_message=row.failure_message,
        )
        for n, row in enumerate(draft.gates, start=1)
    ]
    settings = RecipeSettings(
        automation=draft.automation,
        on_fail=draft.on_fail,
        provider=draft.provider,
        model=draft.model,
        enabled=draft.enabled,
    )
    return ParsedDraft(settings, steps, gates, errors)


class ImportBundleForm(forms.Form):
    bundle = forms.FileField(
        help_text="A .zip exported from Runway (manifest.json + skill folder)."
    )


class PromptForm(forms.Form):
    prompt = forms.CharField(max_length=50_000, widget=forms.Textarea)
