"""Workspace settings: what the engine reads at every launch and claim.

The one writer for them (the settings page, the admin): automation mode and stop stage decide
how far a launch goes, the run limit and the budget are checked at every claim, and raising
either sends the runs they held back at once instead of at their next look.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from audit.log import Target
from features.models import Feature, Stage, Workspace
from pipeline.engine.admission import resume_deferred
from pipeline.engine.audit_trail import by_person
from pipeline.engine.errors import EngineError

SETTINGS = (
    "automation_mode",
    "stop_stage",
    "max_concurrent_runs",
    "monthly_budget_usd",
    "default_provider",
    "default_model",
    "kind_stages",
)
MAX_CONCURRENT_RUNS = 100


def clean_setting(workspace: Workspace, name: str, value: Any) -> Any:
    """The value as stored, or EngineError saying what to fix."""
    if name == "automation_mode":
        if value not in Workspace.AutomationMode.values:
            modes = ", ".join(Workspace.AutomationMode.values)
            raise EngineError(f"Unknown automation mode {value!r}; use one of {modes}.")
        return value
    if name == "stop_stage":
        if value is not None and (
            not isinstance(value, Stage)
            or value.workspace_id != workspace.pk
            or value.board != Stage.Board.FEATURE
        ):
            raise EngineError("The stop stage must be a stage of this workspace's feature board.")
        return value
    if name == "max_concurrent_runs":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EngineError("Max concurrent runs is a whole number.")
        if not 1 <= value <= MAX_CONCURRENT_RUNS:
            raise EngineError(f"Max concurrent runs is 1 to {MAX_CONCURRENT_RUNS}.")
        return value
    if name == "monthly_budget_usd":
        if value is None:
            return None
        try:
            budget = Decimal(str(value))
        except InvalidOperation:
            raise EngineError("The monthly budget is an amount in USD, or empty.") from None
        if budget < 0 or budget >= Decimal("1e8"):
            raise EngineError("The monthly budget is 0 to 99,999,999.99 USD, or empty.")
        return budget.quantize(Decimal("0.01"))
    if name == "default_provider":
        from pipeline.providers import get_provider
        from pipeline.providers.base import PermanentProviderError

        try:
            get_provider(str(value).strip())
        except PermanentProviderError as exc:
            raise EngineError(str(exc)) from None
        return str(value).strip()
    if name == "kind_stages":
        return clean_kind_stages(workspace, value)
    if name == "default_model":
        text = str(value or "").strip()
        if len(text) > 100:
            raise EngineError("The default model is at most 100 characters.")
        return text
    raise EngineError(f"{name!r} is not a workspace setting; use one of {', '.join(SETTINGS)}.")


def clean_kind_stages(workspace: Workspace, value: Any) -> dict[str, list[str]]:
    """{kind: [stage keys]}: the stages each kind of card runs through, in board order. A kind
    left out (or given every stage of its board) runs the whole board. Tasks run on the work
    board, every other kind on the feature board."""
    if not isinstance(value, dict):
        raise EngineError('Pipelines by kind are {"kind": ["stage key", ...]}.')
    boards: dict[str, list[str]] = {}
    for board, key in (
        Stage.objects.filter(workspace=workspace)
        .order_by("board", "position")
        .values_list("board", "key")
    ):
        boards.setdefault(board, []).append(key)
    cleaned: dict[str, list[str]] = {}
    for kind, keys in value.items():
        if kind not in Feature.Kind.values:
            kinds = ", ".join(Feature.Kind.values)
            raise EngineError(f"Unknown kind {kind!r} in pipelines by kind; use {kinds}.")
        board = Stage.Board.WORK if kind == Feature.Kind.TASK else Stage.Board.FEATURE
        known = boards.get(board, [])
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise EngineError(f"Give a {kind} at least one stage to run through.")
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise EngineError(
                f"No stage {unknown[0]!r} on the board a {kind} runs on; stages: "
                f"{', '.join(known)}."
            )
        ordered = [k for k in known if k in keys]
        if ordered != known:
            cleaned[kind] = ordered
    return cleaned


def _audit(workspace: Workspace, user: User | None, before: dict[str, Any]) -> None:
    changed = {
        name: {"before": _plain(value), "after": _plain(getattr(workspace, name))}
        for name, value in before.items()
        if value != getattr(workspace, name)
    }
    budget = {k: v for k, v in changed.items() if k == "monthly_budget_usd"}
    rest = {k: v for k, v in changed.items() if k != "monthly_budget_usd"}
    for action, part in (("budget.change", budget), ("settings.change", rest)):
        if part:
            by_person(
                user, workspace.pk, action, Target("workspace", workspace.pk, workspace.name), part
            )


def _plain(value: Any) -> Any:
    """A stage is logged by its key, not its id."""
    return value.key if isinstance(value, Stage) else value


def update_workspace_settings(
    workspace: Workspace, changes: dict[str, Any], *, user: User | None = None
) -> int:
    """Apply `changes` (setting name → value) to the workspace; returns how many held runs were
    resumed because the budget or the run limit went up. Raises EngineError for a bad value,
    writing nothing. A change by `user` goes to the audit log: budget.change for the monthly
    budget, settings.change for the rest, each {"name": {"before": b, "after": a}}."""
    cleaned = {name: clean_setting(workspace, name, value) for name, value in changes.items()}
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
        budget, limit = locked.monthly_budget_usd, locked.max_concurrent_runs
        before = {name: getattr(locked, name) for name in cleaned}
        for name, value in cleaned.items():
            setattr(locked, name, value)
            setattr(workspace, name, value)
        if cleaned:
            locked.save(update_fields=list(cleaned))
        _audit(locked, user, before)
        raised_budget = "monthly_budget_usd" in cleaned and (
            budget is not None
            and (locked.monthly_budget_usd is None or locked.monthly_budget_usd > budget)
        )
        raised_limit = locked.max_concurrent_runs > limit
        if raised_budget or raised_limit:
            return resume_deferred(locked)  # sent after commit
    return 0
