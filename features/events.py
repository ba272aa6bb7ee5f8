"""Realtime events, published only after the transaction that caused them commits.

Events carry ids, not HTML: the board consumer re-renders from the database, so a reader never
sees a state the database does not hold, and a missed event is repaired by the next one.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from features.models import Feature

logger = logging.getLogger(__name__)


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


def publish(group: str, event: dict[str, Any]) -> None:
    """Best effort: a lost event costs a stale card until the next event or reconnect."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception as exc:  # the broker being down must not fail a write that committed
        logger.warning("could not publish %s to %s: %s", event.get("type"), group, exc)


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(group, event))


def card_changed_on_commit(feature: Feature, *, previous_stage_id: int | None = None) -> None:
    publish_on_commit(
        workspace_group(feature.workspace_id),
        {
            "type": "card.changed",
            "feature_id": feature.pk,
            "stage_id": feature.stage_id,
            "previous_stage_id": previous_stage_id,
        },
    )


def toast_on_commit(workspace_id: int, message: str, *, level: str = "info", **extra: Any) -> None:
    publish_on_commit(
        workspace_group(workspace_id),
        {"type": "board.toast", "message": message, "level": level, **extra},
    )
