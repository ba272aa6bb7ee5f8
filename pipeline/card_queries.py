"""Read models for pages: a constant number of queries however many cards there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from features.models import Artifact, Feature, HealthCheckResult, Stage, Workspace
from pipeline.models import WORKER_STALE_AFTER, Run, WorkerHeartbeat


@dataclass
class Column:
    stage: Stage
    cards: list[Feature] = field(default_factory=list)
    # Whether Launch makes sense for a card in this column (the stage or the next is automated).
    launchable: bool = False

    @property
    def count(self) -> int:
        return len(self.cards)


def annotated_cards(workspace: Workspace) -> QuerySet[Feature]:
    latest_run = Run.objects.filter(feature=OuterRef("pk")).order_by("-created_at", "-id")
    latest_health = HealthCheckResult.objects.filter(feature=OuterRef("pk")).order_by(
        "-checked_at", "-id"
    )
    return (
        Feature.objects.filter(workspace=workspace)
        .select_related("stage")
        .annotate(
            child_count=Count("children", distinct=True),
            open_incidents=Count(
                "children",
                filter=Q(children__kind=Feature.Kind.INCIDENT)
                & ~Q(children__status=Feature.Status.DONE),
                distinct=True,
            ),
            last_run_id=Subquery(latest_run.values("id")[:1]),
            # The health badge: the latest check's outcome (None: never checked).
            health_ok=Subquery(latest_health.values("ok")[:1]),
            health_detail=Subquery(latest_health.values("detail")[:1]),
            # What the card's runs cost, summed in a subquery (no join to multiply counts).
            cost_usd=Subquery(
                Run.objects.filter(feature=OuterRef("pk"))
                .values("feature")
                .annotate(total=Sum("cost_usd"))
                .values("total")[:1]
            ),
        )
        .order_by("position", "id")
    )


def attach_last_runs(cards: list[Feature]) -> None:
    """One query for every card's latest run: what the card shows and which buttons make sense."""
    ids = [c.last_run_id for c in cards if getattr(c, "last_run_id", None)]  # type: ignore[attr-defined]
    runs = Run.objects.select_related("stage").in_bulk(ids) if ids else {}
    for card in cards:
        card.last_run = runs.get(getattr(card, "last_run_id", None))  # type: ignore[attr-defined]


def workspace_stages(workspace: Workspace) -> list[Stage]:
    """Both boards' stages with their recipes and step counts, in one query."""
    return list(
        Stage.objects.filter(workspace=workspace)
        .select_related("recipe")
        .annotate(step_count=Count("recipe__steps"))
        .order_by("board", "position")
    )


def launchable_stage_ids(stages: list[Stage]) -> set[int]:
    """Stages where Launch has work to do: the stage or the one after it has an automated recipe."""
    from pipeline.engine import runnable_recipe

    launchable: set[int] = set()
    for index, stage in enumerate(stages):
        following = stages[index + 1] if index + 1 < len(stages) else None
        if runnable_recipe(stage) is not None or (
            following is not None
            and following.board == stage.board
            and runnable_recipe(following) is not None
        ):
            launchable.add(stage.pk)
    return launchable


def _columns(stages: list[Stage], cards: list[Feature]) -> dict[int, Column]:
    launchable = launchable_stage_ids(stages)
    columns = {s.pk: Column(s, launchable=s.pk in launchable) for s in stages}
    attach_last_runs(cards)
    menus = move_menus(stages)
    # Built here, not with {% url %} per button: reversing and localising thousands of ids was
    # most of a large board's render time. The card's actions live under its detail URL.
    cards_root = reverse("features:detail", args=[0]).removesuffix("0/")
    for card in cards:
        column = columns.get(card.stage_id)
        if column is not None:
            card.ref = str(card.pk)  # type: ignore[attr-defined]
            card.url = f"{cards_root}{card.pk}/"  # type: ignore[attr-defined]
            card.launchable = column.launchable  # type: ignore[attr-defined]
            card.move_options = menus[card.stage_id]  # type: ignore[attr-defined]
            column.cards.append(card)
    return columns


def move_menus(stages: list[Stage]) -> dict[int, SafeString]:
    """Each stage's "Move to" options (its own selected), built once per board rather than
    once per card: a board of 2,000 cards would otherwise render 16,000 option tags."""
    menus: dict[int, SafeString] = {}
    for stage in stages:
        menus[stage.pk] = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (other.pk, mark_safe(" selected") if other.pk == stage.pk else "", other.name)
                for other in stages
                if other.board == stage.board
            ),
        )
    return menus


def columns_for(workspace: Workspace, stage_ids: set[int]) -> list[Column]:
    """Some columns, re-rendered after a change (the consumer's out-of-band updates)."""
    stages = workspace_stages(workspace)
    cards = list(annotated_cards(workspace).filter(stage_id__in=stage_ids))
    columns = _columns(stages, cards)
    return [columns[pk] for pk in columns if pk in stage_ids]


def card_for_render(workspace: Workspace, feature_id: int) -> Feature | None:
    cards = list(annotated_cards(workspace).filter(pk=feature_id))
    if not cards:
        return None
    _columns(workspace_stages(workspace), cards)
    return cards[0]


def worker_alive() -> bool:
    return WorkerHeartbeat.alive().exists()


def lost_cards(workspace: Workspace, limit: int = 50) -> list[Feature]:
    """Cards whose running run's worker went silent (Run.worker_lost), ready to render: nothing
    else tells the board, since a dead worker sends no event."""
    cutoff = timezone.now() - WORKER_STALE_AFTER
    ids = list(
        Run.objects.filter(workspace=workspace, status=Run.Status.RUNNING)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, claimed_at__lt=cutoff))
        .values_list("feature_id", flat=True)[:limit]
    )
    if not ids:
        return []
    cards = list(annotated_cards(workspace).filter(pk__in=ids))
    _columns(workspace_stages(workspace), cards)
    return cards


def board_page(workspace: Workspace) -> dict[str, Any]:
    stages = workspace_stages(workspace)
    columns = _columns(stages, list(annotated_cards(workspace)))
    return {
        "feature_columns": [c for c in columns.values() if c.stage.board == Stage.Board.FEATURE],
        "work_columns": [c for c in columns.values() if c.stage.board == Stage.Board.WORK],
        "worker_alive": worker_alive(),
    }


def feature_page(feature: Feature) -> dict[str, Any]:
    runs = list(Run.objects.filter(feature=feature).select_related("stage").order_by("created_at"))
    return {
        "artifacts": list(Artifact.objects.filter(feature=feature).order_by("name", "-version")),
        "runs": runs,
        "cost_total": sum((r.cost_usd for r in runs if r.cost_usd is not None), Decimal(0)),
        "cost_unknown": any(r.cost_usd is None for r in runs),
        "children": card_tree(feature),
        **linked_work(feature),
        "transitions": list(
            feature.transitions.select_related("from_stage", "to_stage", "actor_user")
        ),
    }


def card_tree(feature: Feature) -> list[Feature]:
    """The card's children, each with its own children as `.grandchildren` (two queries):
    an epic's stories and their subtasks, a feature's incidents and tasks."""
    grandchildren = Prefetch(
        "children",
        queryset=Feature.objects.select_related("stage").order_by("kind", "id"),
        to_attr="grandchildren",
    )
    return list(
        feature.children.select_related("stage")
        .prefetch_related(grandchildren)
        .order_by("kind", "id")
    )


def linked_work(feature: Feature) -> dict[str, Any]:
    """What the card waits for and what waits for it, and its health check's recent results."""
    from features.health import describe
    from features.health_commands import operator_commands

    return {
        "depends_on": list(
            Feature.objects.filter(dependents__feature=feature)
            .select_related("stage")
            .order_by("id")
        ),
        "blocks": list(
            Feature.objects.filter(dependencies__depends_on=feature)
            .select_related("stage")
            .order_by("id")
        ),
        "health_results": list(feature.health_results.all()[:20]),
        "health_summary": describe(feature.health_check),
        "health_target": feature.health_check.get("url") or feature.health_check.get("command", ""),
        "health_command_names": sorted(operator_commands()),
        "health_commands_allowed": bool(operator_commands()),
    }
