"""What every live socket shares: its groups stay joined for as long as it is open, it closes as
soon as its user loses the right to the data, and a change is rendered once per process, not
once per socket.

- Group membership in the channel layer expires (``group_expiry``): an open socket re-joins
  its groups every ``group_expiry / 4`` so a board left open for days keeps receiving changes.
- Each socket also joins its user's group (``features.events.user_group``). Logging out, a
  membership removed or its role changed publish ``access.changed`` there; the socket checks
  its session and membership again and closes (4403) when they no longer hold, or asks the
  page to reconnect (1012) when only the role changed.
- Events carry an ``event_id`` (``features.events.publish``): sockets of the same variant
  (same workspace and write right) share one render of an event through ``shared_render``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from importlib import import_module
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from features.events import user_group

# Seconds between re-joins; None: a quarter of the layer's group expiry.
RENEW_SECONDS: float | None = None
# Renders kept per process for sockets that have not handled the event yet.
SHARED_RENDERS = 256
CLOSE_ACCESS_ENDED = 4403
# "Service restart": htmx's ws extension reconnects after it, and the new socket renders with
# the role the user has now.
CLOSE_RECONNECT = 1012

T = TypeVar("T")
_renders: OrderedDict[Hashable, asyncio.Future[Any]] = OrderedDict()


async def shared_render(key: Hashable, render: Callable[[], Awaitable[T]]) -> T:
    """The HTML for `key`, rendered by the first socket that asks and reused by the others.

    Every socket of a process receives the same event and asks with the same key, so one
    event costs one render (and its queries) per variant, however many sockets watch."""
    future = _renders.get(key)
    if future is None or future.get_loop() is not asyncio.get_running_loop():
        future = asyncio.ensure_future(render())
        _renders[key] = future
        while len(_renders) > SHARED_RENDERS:
            _renders.popitem(last=False)
    result: T = await asyncio.shield(future)
    return result


class LiveConsumer(AsyncWebsocketConsumer):
    """A websocket that renews its groups and closes when its user's access ends.

    Subclasses call ``join`` for their groups, then ``accept``; they override ``access_now``
    to re-check what their data needs (a membership, a role)."""

    joined: list[str]
    user_id: int | None = None
    _renewer: asyncio.Task[None] | None = None
    _access_ended = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Once its access ended the socket serves nothing more: an event already on its way
        # (published before the socket left its groups) is dropped, not rendered for a user
        # who may no longer see it.
        if self._access_ended and not message["type"].startswith("websocket."):
            return
        await super().dispatch(message)

    async def join(self, *groups: str) -> None:
        if not hasattr(self, "joined"):
            self.joined = []
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew())

    async def leave(self, group: str) -> None:
        if group in getattr(self, "joined", []):
            self.joined.remove(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def join_user_group(self) -> None:
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            self.user_id = user.pk
            await self.join(user_group(user.pk))

    def renew_every(self) -> float:
        if RENEW_SECONDS is not None:
            return RENEW_SECONDS
        return max(1.0, float(getattr(self.channel_layer, "group_expiry", 86400)) / 4)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every())
            for group in list(getattr(self, "joined", [])):
                # group_add again moves the membership's timestamp forward.
                await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self._renewer is not None:
            renewer, self._renewer = self._renewer, None
            renewer.cancel()
            # asyncio.wait lets the renewer end without raising its CancelledError here, while
            # a cancellation of this task itself still propagates: suppressing CancelledError
            # around `await renewer` would swallow both, and a socket being shut down (by
            # daphne or a test's communicator) would then never finish.
            await asyncio.wait({renewer})
        for group in list(getattr(self, "joined", [])):
            await self.leave(group)

    async def access_changed(self, event: dict[str, Any]) -> None:
        ended = event.get("ended_session")
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if (ended is not None and ended == session_key) or not await self._session_holds():
            code: int | None = CLOSE_ACCESS_ENDED
        else:
            code = await self.access_now()
        if code is not None:
            self._access_ended = True
            await self.disconnect(code)  # leave the groups before the page hears of it
            await self.close(code=code)

    async def access_now(self) -> int | None:
        """None while the socket may stay as it is; else the close code: CLOSE_ACCESS_ENDED
        (the page does not reconnect) or CLOSE_RECONNECT (the page reconnects and renders
        with the user's new role)."""
        return None

    @database_sync_to_async
    def _session_holds(self) -> bool:
        """The login this socket was opened with still stands (not logged out, not flushed,
        the user still active)."""
        from django.contrib.auth import get_user_model

        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if session is None or key is None or self.user_id is None:
            return False
        fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
        data = fresh.load()
        if not data or str(data.get(SESSION_KEY)) != str(self.user_id):
            return False
        user = get_user_model().objects.filter(pk=self.user_id, is_active=True).first()
        if user is None or BACKEND_SESSION_KEY not in data:
            return False
        # A password change ends other sessions (Django's session hash check).
        stored = data.get(HASH_SESSION_KEY)
        return stored is None or stored == user.get_session_auth_hash()
