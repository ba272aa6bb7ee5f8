"""The engine's writes to a card: moving it, with events after commit.

A card's status is never written here: moving it changes what its status (and the status of
the cards that wait for it) derive to, so both are marked for ``card_state`` to settle.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from features import events
from features.actions import insert_into_column
from features.models import Dependency, Feature, Stage, StageTransition
from pipeline.engine.card_state import touch, watch_waiting
from pipeline.models import Run


def dependents_of(feature_id: int) -> list[int]:
    """The cards that wait for this one."""
    return list(
        Dependency.objects.filter(depends_on_id=feature_id).values_list("feature_id", flat=True)
    )


def touch_with_dependents(feature: Feature) -> None:
    """The card changed stage: it and the cards waiting for it derive their status again, and
    those whose runs wait for it start if it was the last thing they waited for."""
    # The card's lock (locks.lock_card_of) already said whether any card depends on it.
    dependents = dependents_of(feature.pk) if getattr(feature, "has_dependents", True) else []
    touch(feature, *dependents)
    watch_waiting(*dependents)


def record_move(
    feature: Feature,
    stage: Stage,
    *,
    user: User | None = None,
    run: Run | None = None,
    note: str = "",
) -> None:
    """Move the card to the end of `stage` (saved now) with its audit row."""
    from_stage_id = feature.stage_id
    insert_into_column(feature, stage, None)
    feature.save(update_fields=["stage", "position", "updated_at"])
    StageTransition.objects.create(
        feature=feature,
        from_stage_id=from_stage_id,
        to_stage=stage,
        actor_user=user,
        actor_run=run,
        note=note,
    )
    events.card_changed_on_commit(feature, previous_stage_id=from_stage_id)
    touch_with_dependents(feature)
