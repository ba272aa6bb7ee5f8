"""The engine's one lock order: the card row first, then its runs.

Every path that changes a run and its card (completion, stop, retry, rescue) locks the card
first, so they serialise instead of deadlocking on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet, Subquery

from features.models import Feature, Stage
from pipeline.models import Run


def lock_first(cards: QuerySet[Feature]) -> int | None:
    """Lock the card rows only (FOR UPDATE OF), with no ordering join: an ORDER BY on the stage
    would join and lock the stage row too, and every card of a column would queue on it."""
    return cards.select_for_update(of=("self",)).order_by().values_list("pk", flat=True).first()


def lock_feature(feature_id: int) -> Feature:
    # Lock the bare row first: PostgreSQL re-checks a locked row's joins against the *old*
    # joined rows when a concurrent transaction changed the card's stage, and would then
    # return nothing. Read the card with its relations once the lock is held.
    if lock_first(Feature.objects.filter(pk=feature_id)) is None:
        raise Feature.DoesNotExist(f"card {feature_id}")
    return Feature.objects.select_related("workspace", "workspace__stop_stage", "stage").get(
        pk=feature_id
    )


def lock_columns(feature_id: int, target_stage_id: int) -> None:
    """Serialise moves per column: lock the card's column and the target column (stage rows,
    in id order), before the card.

    A move computes the column's order and renumbers it; two moves into one column at once
    gave cards the same position, and two moves crossing between columns deadlocked on each
    other's renumbered cards. People's moves take the column locks first, in one order; the
    engine's own moves (a card advancing, holding its card lock) append without renumbering.
    """
    source = Feature.objects.filter(pk=feature_id).values_list("stage_id", flat=True).first()
    ids = sorted({target_stage_id} | ({source} if source is not None else set()))
    list(Stage.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))


def lock_card_of(run_id: int, **run_filters: Any) -> Feature | None:
    """Every path that changes a run and its card locks the card first, then the run: one order,
    so completion, stop, retry and rescue serialise instead of deadlocking on PostgreSQL.

    None when no run matches `run_filters`."""
    of_run = Run.objects.filter(pk=run_id, **run_filters).values("feature_id")[:1]
    feature_id = lock_first(Feature.objects.filter(pk=Subquery(of_run)))
    if feature_id is None:
        return None
    return Feature.objects.select_related("workspace", "workspace__stop_stage", "stage").get(
        pk=feature_id
    )


def lock_card_of_run(run_id: int) -> Feature:
    feature = lock_card_of(run_id)
    if feature is None:
        raise Run.DoesNotExist(f"run {run_id}")
    return feature


def has_active_run(feature: Feature) -> bool:
    return Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()
