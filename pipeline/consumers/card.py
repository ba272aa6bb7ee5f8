"""The card page's websocket: the page follows the card's pipeline without a reload.

It listens to the card's workspace group and answers only events that name its card: the live
panel (status, progress, step N of M, elapsed times, the actions that apply now) is rendered
once per process and write right and shared; when the run to follow changes, the log panel is
sent too, and its own socket (pipeline.consumers.run_log) streams the new run's lines.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from features.events import workspace_group
from features.models import Feature, Membership
from pipeline.card_live import live_panel
from pipeline.consumers.live import (
    CLOSE_ACCESS_ENDED,
    CLOSE_RECONNECT,
    LiveConsumer,
    shared_render,
)
from pipeline.models import Run


def render_panel(feature_id: int, membership: Membership) -> tuple[str, int | None]:
    """The panel as an out-of-band swap, and the run whose log the page should follow."""
    feature = Feature.objects.select_related("workspace", "stage").filter(pk=feature_id).first()
    if feature is None:
        return "", None
    live = live_panel(feature)
    context = {"live": live, "feature": feature, "membership": membership, "oob": True}
    html = render_to_string("pipeline/card_live.html#panel", context).strip()
    html += render_to_string("pipeline/card_live.html#meta", context).strip()
    return html, live.run.pk if live is not None and live.run is not None else None


def render_log_panel(run_id: int) -> str:
    from pipeline.views.detail import log_context

    run = Run.objects.select_related("stage").filter(pk=run_id).first()
    html = render_to_string("features/detail.html#log-panel", {**log_context(run), "oob": True})
    return html.strip()


class CardConsumer(LiveConsumer):
    feature_id: int = 0
    membership: Membership | None = None
    log_run_id: int | None = None

    async def connect(self) -> None:
        self.feature_id = int(self.scope["url_route"]["kwargs"]["pk"])
        self.membership = await self._membership(self.scope.get("user"))
        if self.membership is None:
            # Same answer for "no such card" and "not yours": nothing leaks.
            await self.close(code=4404)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        shown = query.get("run", [""])[0]
        self.log_run_id = int(shown) if shown.isdigit() else None
        await self.join(workspace_group(self.membership.workspace_id))
        await self.join_user_group()
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page only observes: anything it sends is ignored."""

    @database_sync_to_async
    def _membership(self, user: Any) -> Membership | None:
        if user is None or not user.is_authenticated:
            return None
        return (
            Membership.objects.select_related("workspace")
            .filter(user_id=user.pk, workspace__features__pk=self.feature_id)
            .first()
        )

    async def access_now(self) -> int | None:
        """Still a member with the same role: stay. A new role: reconnect, so the page renders
        with its buttons. No longer a member: close."""
        assert self.membership is not None
        role = await database_sync_to_async(
            Membership.objects.filter(pk=self.membership.pk).values_list("role", flat=True).first
        )()
        if role is None:
            return CLOSE_ACCESS_ENDED
        return None if role == self.membership.role else CLOSE_RECONNECT

    async def cards_changed(self, event: dict[str, Any]) -> None:
        if self.feature_id not in event.get("feature_ids", []):
            return
        membership = self.membership
        assert membership is not None
        key = ("card", event.get("event_id") or object(), self.feature_id, membership.can_write)
        html, run_id = await shared_render(
            key, lambda: database_sync_to_async(render_panel)(self.feature_id, membership)
        )
        if run_id is not None and run_id != self.log_run_id:
            self.log_run_id = run_id
            html += await database_sync_to_async(render_log_panel)(run_id)
        if html:
            await self.send(text_data=html)

    async def board_toast(self, event: dict[str, Any]) -> None:
        """Toasts are the board's; the card page shows the same facts in its panel."""
