"""Websocket sessions the way a browser makes them: a session cookie through the same
AuthMiddlewareStack as config.asgi, events through the real Redis channel layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.routing import websocket_urlpatterns
from features.events import wait_sent

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


@dataclass
class Session:
    connected: bool
    code: Any
    received: list[str] = field(default_factory=list)


def cookie_for(user: Any) -> list[tuple[bytes, bytes]]:
    if user is None:
        return []
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())]


def websocket_session(
    user: Any, path: str, *, then: Callable[[], None] | None = None, expect: int = 0
) -> Session:
    """Connect as `user`; once accepted run `then` (sync) and collect `expect` messages, and
    check nothing more arrives (e.g. another workspace's events)."""
    headers = cookie_for(user)
    # Events published before the session (creating its cards, say) leave asynchronously: let
    # them reach the layer first, or one could arrive as an extra message once it listens.
    assert wait_sent(timeout=10), "earlier events still in flight"

    async def scenario() -> Session:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect()
        session = Session(connected, code)
        if not connected:
            return session
        if then is not None:
            await sync_to_async(then)()
        for _ in range(expect):
            session.received.append(await communicator.receive_from(timeout=3))
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return session

    return async_to_sync(scenario)()
