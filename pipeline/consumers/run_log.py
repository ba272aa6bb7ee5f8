"""A run's live log: members of the run's workspace get each new line as an htmx OOB append.

Events on ``run.<id>`` carry only a sequence number; lines are read from the database, so a
reader sees exactly what was committed, and ``?after=<seq>`` lets a reconnect fill its gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.db.models import Max
from django.template.loader import render_to_string

from features.events import run_group
from pipeline.consumers.live import CLOSE_ACCESS_ENDED, LiveConsumer
from pipeline.models import Run, RunLog

BATCH = 500  # lines per message, so a long gap arrives as several moderate frames


@dataclass
class Batch:
    html: str
    last_seq: int
    full: bool


def _after_param(scope: dict[str, Any]) -> int | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        after = int(query["after"][0])
    except (KeyError, ValueError):
        return None
    return max(after, 0)


class RunLogConsumer(LiveConsumer):
    run_id: int = 0
    last_seq: int = 0

    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await self._may_watch(self.scope.get("user")):
            # Same answer for "no such run" and "not yours": nothing leaks.
            await self.close(code=4404)
            return
        # Join before reading the backlog, so a line committed in between is not missed.
        await self.join(run_group(self.run_id))
        await self.join_user_group()
        await self.accept()
        after = _after_param(self.scope)
        if after is None:
            # No position given: the page already shows what exists; follow from the end.
            self.last_seq = await self._top_seq()
        else:
            self.last_seq = after
            await self._send_new_lines()

    async def access_now(self) -> int | None:
        return None if await self._may_watch(self.scope.get("user")) else CLOSE_ACCESS_ENDED

    async def run_log(self, event: dict[str, Any]) -> None:
        # Events are handled one at a time, so a line already sent (in the backlog or in an
        # earlier batch) needs no query.
        if int(event.get("seq", 0)) > self.last_seq:
            await self._send_new_lines()

    async def _send_new_lines(self) -> None:
        while True:
            batch = await self._lines_after(self.last_seq)
            if batch.html:
                await self.send(text_data=batch.html)
            self.last_seq = batch.last_seq
            if not batch.full:
                return

    @database_sync_to_async
    def _may_watch(self, user: Any) -> bool:
        if user is None or not user.is_authenticated:
            return False
        return Run.objects.filter(pk=self.run_id, workspace__memberships__user_id=user.pk).exists()

    @database_sync_to_async
    def _top_seq(self) -> int:
        top = RunLog.objects.filter(run_id=self.run_id).aggregate(top=Max("seq"))["top"]
        return top or 0

    @database_sync_to_async
    def _lines_after(self, after: int) -> Batch:
        lines = list(
            RunLog.objects.filter(run_id=self.run_id, seq__gt=after).order_by("seq")[:BATCH]
        )
        if not lines:
            return Batch("", after, full=False)
        run = Run.objects.only("status").filter(pk=self.run_id).first()
        html = render_to_string(
            "features/detail.html#log-append",
            {
                "run_id": self.run_id,
                "lines": lines,
                "ended": run is None or not run.is_active,
                "status_label": run.get_status_display() if run else "deleted",
            },
        )
        return Batch(html, lines[-1].seq, full=len(lines) == BATCH)
