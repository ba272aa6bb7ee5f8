"""The board's websocket: members of a workspace receive its changes as HTML, nobody else connects.

Events carry ids only; the cards and columns they name are rendered from the database once
per process and write right (their role decides which buttons show) and shared by every socket
of that kind (``shared_render``); htmx's ws extension swaps them in by id.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from features.events import workspace_group
from features.models import Membership
from pipeline import card_queries as queries
from pipeline.consumers.live import (
    CLOSE_ACCESS_ENDED,
    CLOSE_RECONNECT,
    LiveConsumer,
    shared_render,
)


def render_board_changes(
    membership: Membership, feature_ids: list[int], stage_ids: list[int]
) -> str:
    """The named columns (whole) and the other named cards, as one message of HTML fragments.
    A bounded number of queries: one set for the columns, one set per card outside them."""
    workspace = membership.workspace
    context = {"membership": membership, "workspace": workspace}
    parts = []
    redrawn: set[int] = set()
    for column in queries.columns_for(workspace, set(stage_ids)):
        parts.append(render_to_string("features/board.html#column", {**context, "column": column}))
        redrawn.update(card.pk for card in column.cards)
    for feature_id in feature_ids:
        if feature_id in redrawn:
            continue
        card = queries.card_for_render(workspace, feature_id)
        if card is not None:
            parts.append(render_to_string("features/board.html#card", {**context, "card": card}))
    return "\n".join(part.strip() for part in parts)


class BoardConsumer(LiveConsumer):
    membership: Membership | None = None

    async def connect(self) -> None:
        self.membership = await self._membership(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["slug"]
        )
        if self.membership is None:
            # Same answer for "no such workspace" and "not yours": nothing leaks.
            await self.close(code=4404)
            return
        await self.join(workspace_group(self.membership.workspace_id))
        await self.join_user_group()
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page only observes: anything it sends is ignored."""

    @database_sync_to_async
    def _membership(self, user: Any, slug: str) -> Membership | None:
        if user is None or not user.is_authenticated:
            return None
        return (
            Membership.objects.select_related("workspace")
            .filter(user_id=user.pk, workspace__slug=slug)
            .first()
        )

    async def access_now(self) -> int | None:
        """Still a member with the same role: stay. A new role: reconnect, so the page renders
        with its buttons. No longer a member: close."""
        assert self.membership is not None
        role = await database_sync_to_async(
            Membership.objects.filter(
                user_id=self.membership.user_id, workspace_id=self.membership.workspace_id
            )
            .values_list("role", flat=True)
            .first
        )()
        if role is None:
            return CLOSE_ACCESS_ENDED
        return None if role == self.membership.role else CLOSE_RECONNECT

    def _variant(self, event: dict[str, Any]) -> tuple[Any, ...]:
        assert self.membership is not None
        # An event without an id (not sent by features.events.publish) is never shared.
        event_id = event.get("event_id") or object()
        return (event_id, self.membership.workspace_id, self.membership.can_write)

    async def cards_changed(self, event: dict[str, Any]) -> None:
        membership = self.membership
        assert membership is not None
        render = database_sync_to_async(render_board_changes)
        html = await shared_render(
            ("board", *self._variant(event)),
            lambda: render(membership, event["feature_ids"], event.get("stage_ids", [])),
        )
        if html:
            await self.send(text_data=html)

    async def board_toast(self, event: dict[str, Any]) -> None:
        assert self.membership is not None
        context = {
            "message": event["message"],
            "level": event.get("level", "info"),
            "feature_id": event.get("feature_id"),
            "run_id": event.get("run_id"),
            "batch_id": event.get("batch_id"),
            "toast_key": event.get("toast_key"),
            "can_write": self.membership.can_write,
        }
        html = await shared_render(
            ("toast", *self._variant(event)),
            lambda: sync_to_async(render_to_string)("features/board.html#toast", context),
        )
        await self.send(text_data=html.strip())
