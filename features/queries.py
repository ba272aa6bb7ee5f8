"""Read models for pages: a constant number of queries however many cards there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Prefetch, Q

from features.models import Artifact, Feature, Stage, Workspace
from pipeline.models import Run


@dataclass
class Column:
    stage: Stage
    cards: list[Feature] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.cards)


def board_columns(workspace: Workspace, board: str = Stage.Board.FEATURE) -> list[Column]:
    stages = list(workspace.stages.filter(board=board).order_by("position"))
    columns = {s.pk: Column(s) for s in stages}
    active = Run.objects.filter(status__in=Run.ACTIVE_STATUSES).select_related("stage")
    cards = (
        Feature.objects.filter(workspace=workspace, stage__board=board)
        .annotate(
            child_count=Count("children", distinct=True),
            open_incidents=Count(
                "children",
                filter=Q(children__kind=Feature.Kind.INCIDENT)
                & ~Q(children__status=Feature.Status.DONE),
                distinct=True,
            ),
        )
        .prefetch_related(Prefetch("runs", queryset=active, to_attr="active_runs"))
        .order_by("position", "id")
    )
    for card in cards:
        columns[card.stage_id].cards.append(card)
    return list(columns.values())


def feature_page(feature: Feature) -> dict[str, Any]:
    return {
        "artifacts": list(Artifact.objects.filter(feature=feature).order_by("name", "-version")),
        "runs": list(
            Run.objects.filter(feature=feature).select_related("stage").order_by("created_at")
        ),
        "children": list(feature.children.select_related("stage").order_by("kind", "id")),
        "transitions": list(
            feature.transitions.select_related("from_stage", "to_stage", "actor_user")
        ),
    }
