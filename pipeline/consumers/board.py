"""The board's websocket: members of a workspace receive its changes as HTML, nobody else connects.

Events carry ids only; this consumer re-renders the affected cards and columns from the
database for its user (their role decides which buttons show), and htmx's ws extension swaps
them in by id.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from features.events import workspace_group
from features.models import Membership
from pipeline import card_queries as queries


class BoardConsumer(AsyncWebsocketConsumer):
    group: str | None = None
    membership: Membership | None = None

    async def connect(self) -> None:
        self.membership = await self._membership(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["slug"]
        )
        if self.membership is None:
            # Same answer for "no such workspace" and "not yours": nothing leaks.
            await self.close(code=4404)
            return
        self.group = workspace_group(self.membership.workspace_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

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

    @database_sync_to_async
    def _render_cards(self, feature_ids: list[int], stage_ids: list[int]) -> str:
        assert self.membership is not None
        workspace = self.membership.workspace
        context = {"membership": self.membership, "workspace": workspace}
        parts = []
        redrawn: set[int] = set()
        for column in queries.columns_for(workspace, set(stage_ids)):
            parts.append(
                render_to_string("features/board.html#column", {**context, "column": column})
            )
            redrawn.update(card.pk for card in column.cards)
        for feature_id in feature_ids:
            if feature_id in redrawn:
                continue
            card = queries.card_for_render(workspace, feature_id)
            if card is not None:
                parts.append(
                    render_to_string("features/board.html#card", {**context, "card": card})
                )
        return "\n".join(part.strip() for part in parts)

    async def cards_changed(self, event: dict[str, Any]) -> None:
        html = await self._render_cards(event["feature_ids"], event.get("stage_ids", []))
        if html:
            await self.send(text_data=html.strip())

    async def board_toast(self, event: dict[str, Any]) -> None:
        assert self.membership is not None
        html = render_to_string(
            "features/board.html#toast",
            {
                "message": event["message"],
                "level": event.get("level", "info"),
                "feature_id": event.get("feature_id"),
                "can_write": self.membership.can_write,
            },
        )
        await self.send(text_data=html.strip())
