"""The engine's writes to a card: moving it, with events after commit.

A card's status is never written here: moving it changes what its status (and the status of
the cards that wait for it) derive to, so both are marked for ``card_state`` to settle.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from features import events
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
    shown: tuple[str, str] | None = None,
) -> None:
    """Move the card to the end of `stage` (saved now) with its audit row. `shown`: the
    (status, note) the card shows from now on, when the caller knows it (stored by the same
    UPDATE; the caller tells card_state it is stored).

    The card is numbered inside its own UPDATE (one past the column's highest position), and
    on PostgreSQL the audit row is inserted by the same statement: one round trip, not three.
    """
    from_stage_id = feature.stage_id
    now = timezone.now()
    qn = connection.ops.quote_name
    cards, audit = qn(Feature._meta.db_table), qn(StageTransition._meta.db_table)
    also, extra = ("", []) if shown is None else (", status = %s, status_note = %s", [*shown])
    move = f"""
        UPDATE {cards} SET stage_id = %s, updated_at = %s{also},
            position = COALESCE((SELECT MAX(col.position) FROM {cards} AS col
                                 WHERE col.stage_id = %s), -1) + 1
        WHERE id = %s RETURNING position"""  # noqa: S608 (names from the models' meta)
    at = connection.ops.adapt_datetimefield_value(now)
    params: list[Any] = [stage.pk, at, *extra, stage.pk, feature.pk]
    row = [from_stage_id, stage.pk, user.pk if user else None, run.pk if run else None, note, at]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""WITH moved AS ({move}), audit AS (
                        INSERT INTO {audit} (feature_id, from_stage_id, to_stage_id,
                            actor_user_id, actor_run_id, note, created_at)
                        SELECT %s, %s, %s, %s, %s, %s, %s FROM moved)
                    SELECT position FROM moved""",  # noqa: S608
                [*params, feature.pk, *row],
            )
            (feature.position,) = cursor.fetchone()
        else:
            cursor.execute(move, params)
            (feature.position,) = cursor.fetchone()
            StageTransition.objects.create(
                feature=feature,
                from_stage_id=from_stage_id,
                to_stage=stage,
                actor_user=user,
                actor_run=run,
                note=note,
                created_at=now,
            )
    feature.stage, feature.updated_at = stage, now
    if shown is not None:
        feature.status, feature.status_note = shown
    events.card_changed_on_commit(feature, previous_stage_id=from_stage_id)
    touch_with_dependents(feature)
