"""Epics with stories, as a product team's would be: made by the epic's own pipeline."""

from __future__ import annotations

from typing import Any

from features.models import Dependency, Feature, Workspace
from pipeline import engine
from pipeline.models import Run
from tests.conftest import Story
from tests.engine_helpers import card

# The offline provider writes 3 to 6 stories, stable for a title: this one gets 6, depending
# on each other as 0 ← 1 ← 2, 0 ← 3, 1 ← 4, 1 ← 5.
SIX_STORIES = "Notifications"


def epic(
    workspace: Workspace, title: str = SIX_STORIES, description: str = "", at: str | None = None
) -> Feature:
    feature = card(workspace, title, description=description or f"All of {title}.", at=at)
    Feature.objects.filter(pk=feature.pk).update(kind=Feature.Kind.EPIC)
    feature.refresh_from_db()
    return feature


def epic_with_stories(story: Story, eager: Any, title: str = SIX_STORIES) -> Feature:
    """An epic whose own pipeline wrote its stories (launched from Tickets, to be quick: the
    integration tests run the whole product template)."""
    made = epic(story.workspace, title, at="tickets")
    with eager():
        engine.launch_pipeline(made, story.owner)
    assert made.children.filter(kind=Feature.Kind.STORY).exists()
    return made


def stories(epic: Feature) -> list[Feature]:
    return list(
        Feature.objects.filter(parent=epic, kind=Feature.Kind.STORY)
        .select_related("stage")
        .order_by("source_index")
    )


def edges(cards: list[Feature]) -> list[tuple[int, int]]:
    """(dependent, dependency) pairs among these cards."""
    ids = [c.pk for c in cards]
    return list(
        Dependency.objects.filter(feature_id__in=ids, depends_on_id__in=ids).values_list(
            "feature_id", "depends_on_id"
        )
    )


def run_of(feature: Feature, stage_key: str, status: str = Run.Status.SUCCEEDED) -> Run:
    return Run.objects.get(feature=feature, stage__key=stage_key, status=status)
