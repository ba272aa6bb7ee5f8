"""The engine's writes to a card: saving its status and moving it, with events after commit."""

from __future__ import annotations

from django.contrib.auth.models import User

from features import events
from features.actions import insert_into_column
from features.models import Feature, Stage, StageTransition
from pipeline.models import Run


def save_feature(feature: Feature, *fields: str) -> None:
    feature.save(update_fields=[*fields, "updated_at"])
    events.card_changed_on_commit(feature)


def record_move(
    feature: Feature,
    stage: Stage,
    *,
    user: User | None = None,
    run: Run | None = None,
    note: str = "",
) -> None:
    from_stage_id = feature.stage_id
    insert_into_column(feature, stage, None)
    StageTransition.objects.create(
        feature=feature,
        from_stage_id=from_stage_id,
        to_stage=stage,
        actor_user=user,
        actor_run=run,
        note=note,
    )
    events.card_changed_on_commit(feature, previous_stage_id=from_stage_id)
