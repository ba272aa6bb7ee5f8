"""Realtime events, published only after the transaction that caused them commits.

Events carry ids, not HTML: the board consumer re-renders from the database, so a reader never
sees a state the database does not hold, and a missed event is repaired by the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

from features.models import Feature

logger = logging.getLogger(__name__)


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


def user_group(user_id: int) -> str:
    """Every open socket of a user: told when their access may have changed."""
    return f"user.{user_id}"


# A send Redis has not answered within this many seconds is given up (and logged): the layer
# sets no read timeout (config.redis_urls.channel_layer_host), and a host that accepts but
# never answers would otherwise hold the send, and everything waiting for it, for good.
PUBLISH_TIMEOUT_SECONDS = 10.0


async def _group_send(layer: Any, group: str, event: dict[str, Any]) -> None:
    # asyncio.timeout, not wait_for: wait_for can lose a cancellation before Python 3.12.
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            await layer.group_send(group, event)
    except TimeoutError as exc:
        raise TimeoutError(f"Redis did not answer within {PUBLISH_TIMEOUT_SECONDS:g} s") from exc


class _Publisher:
    """One event loop per process, in its own thread, for every group_send.

    channels-redis keeps a connection pool per event loop, so `async_to_sync` (a fresh loop
    per call) paid a new Redis connection for every event. A long-lived loop reuses one, and
    publishing also works from a thread that already runs a loop of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._in_flight: set[concurrent.futures.Future[None]] = set()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # new process after a fork
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="event-publisher", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def send(self, group: str, event: dict[str, Any]) -> None:
        """Queue the send on the publisher's loop and return at once: a hop never waits for
        the board. Sends leave in order; a failure is logged, never raised.

        Each event gets an ``event_id``: the sockets of one process that receive it share one
        render (pipeline.consumers.live.shared_render)."""
        layer = get_channel_layer()
        if layer is None:
            return
        event = {**event, "event_id": uuid.uuid4().hex}
        future = asyncio.run_coroutine_threadsafe(
            _group_send(layer, group, event), self._running_loop()
        )
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        future.add_done_callback(partial(_report_failure, group, event.get("type")))

    def wait_sent(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every event queued so far to reach the layer.
        True when none is left in flight."""
        with self._lock:
            pending = set(self._in_flight)
        if not pending:
            return True
        _, not_done = concurrent.futures.wait(pending, timeout=timeout)
        return not not_done


def _report_failure(group: str, kind: Any, future: concurrent.futures.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("could not publish %s to %s: %s", kind, group, future.exception())


_publisher = _Publisher()


_held: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar(
    "runway_held_events", default=None
)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Events published in the block leave, in order, when it ends.

    A worker's completion holds its events this way: they were published from the commit's
    callbacks at the moment the next run's message was being sent, and the publisher thread's
    work (serialising, Redis calls) then competed with that send for the interpreter, adding
    about a third of a millisecond to every hand-over (timestamps in both processes)."""
    if _held.get() is not None:  # an outer block holds them already, in order
        yield
        return
    events: list[tuple[str, dict[str, Any]]] = []
    token = _held.set(events)
    try:
        yield
    finally:
        _held.reset(token)
        for group, event in events:
            publish(group, event)


def publish(group: str, event: dict[str, Any]) -> None:
    """Best effort: a lost event costs a stale card until the next event or reconnect."""
    holding = _held.get()
    if holding is not None:
        holding.append((group, event))
        return
    try:
        _publisher.send(group, event)
    except Exception as exc:  # the broker being down must not fail a write that committed
        logger.warning("could not publish %s to %s: %s", event.get("type"), group, exc)


def wait_sent(timeout: float = 5.0) -> bool:
    """Block until the events this process published so far reached the channel layer (at most
    `timeout` seconds): publishing returns before they do. True when none is left in flight."""
    return _publisher.wait_sent(timeout)


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(group, event))


_pending = threading.local()


def card_changed_on_commit(
    feature: Feature, *, previous_stage_id: int | None = None, created: bool = False
) -> None:
    """Tell the board a card changed. One transaction's changes go out as one event per
    workspace, so a hop that touches a card five times re-renders it once.

    Columns are named when a card entered or left them (they need their order and count
    redrawn); other cards are redrawn in place.
    """
    pending: dict[int, dict[str, set[int]]] = getattr(_pending, "cards", None) or {}
    _pending.cards = pending
    entry = pending.setdefault(feature.workspace_id, {"feature_ids": set(), "stage_ids": set()})
    entry["feature_ids"].add(feature.pk)
    if created or (previous_stage_id is not None and previous_stage_id != feature.stage_id):
        entry["stage_ids"].add(feature.stage_id)
        if previous_stage_id is not None:
            entry["stage_ids"].add(previous_stage_id)
    # Registered per change: after a rollback the buffered ids go out with the next commit,
    # which only redraws cards from the database once more.
    transaction.on_commit(_flush_cards)


def _flush_cards() -> None:
    pending: dict[int, dict[str, set[int]]] = getattr(_pending, "cards", None) or {}
    _pending.cards = None
    for workspace_id, entry in pending.items():
        publish(
            workspace_group(workspace_id),
            {
                "type": "cards.changed",
                "feature_ids": sorted(entry["feature_ids"]),
                "stage_ids": sorted(entry["stage_ids"]),
            },
        )


def toast_on_commit(workspace_id: int, message: str, *, level: str = "info", **extra: Any) -> None:
    publish_on_commit(
        workspace_group(workspace_id),
        {"type": "board.toast", "message": message, "level": level, **extra},
    )


def access_changed_on_commit(user_id: int, *, ended_session: str | None = None) -> None:
    """The user's open sockets check their session and memberships again (and close when they
    no longer hold): after a logout (`ended_session`: its session key, closed at once), a
    membership removed or a role changed."""
    event: dict[str, Any] = {"type": "access.changed"}
    if ended_session:
        event["ended_session"] = ended_session
    publish_on_commit(user_group(user_id), event)
