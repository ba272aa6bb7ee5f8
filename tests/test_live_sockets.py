"""Sockets that stay open and close when they must, on the board and run log consumers.

Sessions are real (a session cookie through the same AuthMiddlewareStack as config.asgi) and
events go through the real Redis channel layer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db.backends.utils import CursorWrapper
from django.test import Client

from features.actions import do_create_feature
from features.events import publish, wait_sent, workspace_group
from features.models import Membership
from pipeline.consumers import live
from tests.factories import FeatureFactory
from tests.websocket_helpers import application

pytestmark = pytest.mark.django_db(transaction=True)


def _event(feature_id: int) -> dict[str, Any]:
    return {"type": "cards.changed", "feature_ids": [feature_id], "stage_ids": []}


def _logged_in(user: Any) -> tuple[Client, list[tuple[bytes, bytes]]]:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return client, [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())]


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(scenario)()


async def _connect(path: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    # Earlier events (the test's own cards) leave asynchronously: let them land first.
    assert await sync_to_async(wait_sent)(10)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _closed_within(communicator: WebsocketCommunicator, seconds: float) -> int:
    """The close code the server sent within `seconds` (fails on any other message)."""
    message = await communicator.receive_output(timeout=seconds)
    assert message["type"] == "websocket.close", message
    return message["code"]


def test_an_idle_board_socket_stays_open_past_the_layers_blocking_wait(story):
    card = do_create_feature(story.workspace, title="Checkout", user=story.owner)
    _, headers = _logged_in(story.teammate)

    async def scenario() -> str:
        socket = await _connect(f"/ws/workspaces/{story.workspace.slug}/", headers)
        # Longer than channels_redis's 5 s blocking receive: with a read timeout equal to it,
        # the receive loop failed here with "Timeout reading from …" and the socket closed.
        assert await socket.receive_nothing(timeout=7, interval=0.5)
        await sync_to_async(publish)(workspace_group(story.workspace.pk), _event(card.pk))
        html = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return html

    assert f'id="card-{card.pk}"' in _run(scenario)


class _Clock:
    """channels_redis's clock (group add times and the expiry cut-off), moved forward at will."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def test_a_socket_renews_its_group_and_still_receives_after_the_expiry(story, monkeypatch):
    card = do_create_feature(story.workspace, title="Checkout", user=story.owner)
    _, headers = _logged_in(story.teammate)
    clock = _Clock()
    monkeypatch.setattr("channels_redis.core.time", clock)
    monkeypatch.setattr(live, "RENEW_SECONDS", 0.2)
    layer = get_channel_layer()
    group = workspace_group(story.workspace.pk)

    async def scenario() -> str:
        socket = await _connect(f"/ws/workspaces/{story.workspace.slug}/", headers)
        joined_at = clock.time()
        # A day and a minute later: the first membership is past group_expiry.
        clock.offset = layer.group_expiry + 60
        redis = layer.connection(layer.consistent_hash(group))
        deadline = time.monotonic() + 5
        while True:  # until the socket has re-joined on the new clock
            scores = await redis.zrange(layer._group_key(group), 0, -1, withscores=True)
            if scores and min(score for _, score in scores) > joined_at + layer.group_expiry:
                break
            assert time.monotonic() < deadline, "the socket never renewed its group"
            await asyncio.sleep(0.05)
        await sync_to_async(publish)(group, _event(card.pk))
        html = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return html

    assert f'id="card-{card.pk}"' in _run(scenario)


def _ends_after(
    story: Any, change: Callable[[Client], object], path: str, *, user: Any = None
) -> tuple[int, bool]:
    """Open a socket as `user`, make `change`, then publish: (close code, nothing received)."""
    card = do_create_feature(story.workspace, title="Checkout", user=story.owner)
    client, headers = _logged_in(user or story.teammate)

    async def scenario() -> tuple[int, bool]:
        socket = await _connect(path, headers)
        await sync_to_async(change)(client)
        code = await _closed_within(socket, 5)
        await sync_to_async(publish)(workspace_group(story.workspace.pk), _event(card.pk))
        silent = await socket.receive_nothing(timeout=0.5)
        return code, silent

    return _run(scenario)


def test_logging_out_closes_the_board_socket(story):
    board = f"/ws/workspaces/{story.workspace.slug}/"

    code, silent = _ends_after(story, lambda client: client.post("/logout/"), board)

    assert (code, silent) == (4403, True)


def test_removing_the_member_closes_the_board_socket(story):
    board = f"/ws/workspaces/{story.workspace.slug}/"

    def remove(_: Client) -> None:
        Membership.objects.get(user=story.teammate, workspace=story.workspace).delete()

    code, silent = _ends_after(story, remove, board)

    assert (code, silent) == (4403, True)


def test_a_new_role_closes_the_board_socket_so_the_page_reconnects_with_it(story):
    board = f"/ws/workspaces/{story.workspace.slug}/"

    def demote(_: Client) -> None:
        membership = Membership.objects.get(user=story.teammate, workspace=story.workspace)
        membership.role = Membership.Role.VIEWER
        membership.save()

    code, _ = _ends_after(story, demote, board)

    assert code == 1012  # "service restart": the ws extension reconnects after it


def test_removing_the_member_closes_their_run_log_socket(story):
    from pipeline.models import Run
    from tests.engine_helpers import card

    feature = card(story.workspace)
    run = Run.objects.create(
        feature=feature, workspace=story.workspace, stage=feature.stage, status="running"
    )

    def remove(_: Client) -> None:
        Membership.objects.get(user=story.teammate, workspace=story.workspace).delete()

    code, _ = _ends_after(story, remove, f"/ws/runs/{run.pk}/")

    assert code == 4403


def test_logging_out_elsewhere_leaves_this_sessions_socket_open(story):
    card = do_create_feature(story.workspace, title="Checkout", user=story.owner)
    _, headers = _logged_in(story.teammate)
    other, _ = _logged_in(story.teammate)

    async def scenario() -> str:
        socket = await _connect(f"/ws/workspaces/{story.workspace.slug}/", headers)
        await sync_to_async(other.post)("/logout/")
        assert await socket.receive_nothing(timeout=1)
        await sync_to_async(publish)(workspace_group(story.workspace.pk), _event(card.pk))
        html = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return html

    assert f'id="card-{card.pk}"' in _run(scenario)


class _QueryCounter:
    """Counts SQL statements from every thread (the consumers render in worker threads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        execute = CursorWrapper.execute

        def counted(cursor: CursorWrapper, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
            return execute(cursor, *args, **kwargs)

        monkeypatch.setattr(CursorWrapper, "execute", counted)


def _queries_for_one_event(story: Any, sockets: int, monkeypatch: pytest.MonkeyPatch) -> int:
    cards = story.workspace.features.order_by("id")
    changed = [cards[0].pk, cards[100].pk]
    users = [story.owner, story.teammate, story.viewer]
    headers = [_logged_in(users[i % len(users)])[1] for i in range(sockets)]
    counter = _QueryCounter(monkeypatch)

    async def scenario() -> int:
        opened = [await _connect(f"/ws/workspaces/{story.workspace.slug}/", h) for h in headers]
        before = counter.count
        event = {"type": "cards.changed", "feature_ids": changed, "stage_ids": []}
        await sync_to_async(publish)(workspace_group(story.workspace.pk), event)
        for socket in opened:
            assert 'id="card-' in await socket.receive_from(timeout=10)
        used = counter.count - before
        for socket in opened:
            await socket.disconnect()
        return used

    return _run(scenario)


def test_one_event_costs_the_same_queries_for_one_socket_or_twenty(story, monkeypatch):
    FeatureFactory.create_batch(200, workspace=story.workspace)

    alone = _queries_for_one_event(story, 1, monkeypatch)
    twenty = _queries_for_one_event(story, 20, monkeypatch)

    # One render per kind of member (writers, viewers), each a fixed set of queries: before,
    # each socket rendered on its own (2-3 queries per card per socket).
    assert twenty == 2 * alone
    assert alone <= 6


def test_a_socket_cancelled_while_it_disconnects_ends_cancelled():
    """Daphne (or a test's communicator) cancels a socket that is shutting down and waits for
    it: the cancellation must not be lost while the socket waits for its renewer to stop, or
    whoever waits for the socket waits forever."""

    async def scenario() -> tuple[bool, bool]:
        consumer = live.LiveConsumer()
        may_stop = asyncio.Event()

        async def slow_to_stop() -> None:  # a renewer caught mid group_add
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await may_stop.wait()
                raise

        renewer = asyncio.ensure_future(slow_to_stop())
        consumer._renewer = renewer
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(consumer.disconnect(1000))
        await asyncio.sleep(0)  # closing now waits for the renewer
        closing.cancel()
        may_stop.set()
        await asyncio.wait({closing}, timeout=5)
        return closing.cancelled(), renewer.cancelled()

    assert _run(scenario) == (True, True)
