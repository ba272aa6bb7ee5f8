"""The board's websocket: members of a workspace receive its events, nobody else connects."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from features.events import workspace_group
from features.models import Membership


class BoardConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["slug"]
        workspace_id = await self._workspace_id_for(user, slug)
        if workspace_id is None:
            # Same answer for "no such workspace" and "not yours": nothing leaks.
            await self.close(code=4404)
            return
        self.group = workspace_group(workspace_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    @database_sync_to_async
    def _workspace_id_for(self, user: Any, slug: str) -> int | None:
        if user is None or not user.is_authenticated:
            return None
        return (
            Membership.objects.filter(user=user, workspace__slug=slug)
            .values_list("workspace_id", flat=True)
            .first()
        )

    async def _forward(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event))

    async def card_changed(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def run_changed(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def board_toast(self, event: dict[str, Any]) -> None:
        await self._forward(event)
