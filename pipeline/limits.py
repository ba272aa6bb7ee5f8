"""Provider slots shared by every worker process: a counting semaphore in Redis with leases.

Each holder is a member of a sorted set scored by when its lease ends (Redis server time, so
the clocks of different machines never matter). Taking a slot first drops expired leases, so
a SIGKILLed worker's slot frees itself within one lease; a live holder renews its lease from a
small thread while its call runs. Scripts make each check-and-take atomic.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import redis
from django.conf import settings

from pipeline.providers.base import StepCancelled

logger = logging.getLogger(__name__)

KEY_PREFIX = "runway:provider-slots"

# KEYS[1] the set; ARGV: token, limit, lease seconds. Returns {taken (0/1), holders}.
_ACQUIRE = """
redis.replicate_commands()
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local holders = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]) * 1000, ARGV[1])
  return {1, holders}
end
if holders < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]) * 1000, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2000)
  return {1, holders + 1}
end
return {0, holders}
"""

# Renew only a lease we still hold: one that expired and was dropped is not silently re-taken.
_RENEW = """
redis.replicate_commands()
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]) * 1000, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2000)
  return 1
end
return 0
"""


class NoSlot(Exception):
    """No slot became free before the deadline."""

    def __init__(self, message: str, holders: int) -> None:
        super().__init__(message)
        self.holders = holders


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def slot_key(provider: str, workspace_id: int) -> str:
    return f"{KEY_PREFIX}:{provider}:{workspace_id}"


def in_use(provider: str, workspace_id: int) -> int:
    """Holders with a live lease (expired ones are not counted)."""
    client = _redis(settings.REDIS_URL)
    seconds, micros = client.time()
    return int(
        client.zcount(slot_key(provider, workspace_id), seconds * 1000 + micros // 1000, "+inf")
    )


def take_lease(key: str, token: str, limit: int, seconds: int) -> bool:
    """Take (or renew) one of `limit` leases of `seconds` in `key`; False when all are held.
    Raises redis.RedisError when Redis is unreachable."""
    taken, _ = _redis(settings.REDIS_URL).eval(_ACQUIRE, 1, key, token, limit, seconds)
    return bool(taken)


def renew_lease(key: str, token: str, seconds: int) -> bool:
    """Extend a lease still held; False when it expired meanwhile."""
    return bool(_redis(settings.REDIS_URL).eval(_RENEW, 1, key, token, seconds))


def release_lease(key: str, token: str) -> None:
    _redis(settings.REDIS_URL).zrem(key, token)


class _Lease:
    def __init__(self, client: redis.Redis, key: str, token: str, seconds: int) -> None:
        self.client, self.key, self.token, self.seconds = client, key, token, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="provider-slot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(max(self.seconds / 3, 0.2)):
            try:
                if not self.client.eval(_RENEW, 1, self.key, self.token, self.seconds):
                    logger.warning("provider slot %s lost its lease", self.key)
                    return
            except redis.RedisError:
                logger.warning("could not renew provider slot %s", self.key, exc_info=True)

    def release(self) -> None:
        self._stop.set()
        try:
            self.client.zrem(self.key, self.token)
        except redis.RedisError:
            # The lease expires on its own.
            logger.warning("could not release provider slot %s", self.key, exc_info=True)


@contextlib.contextmanager
def provider_slot(
    provider: str,
    workspace_id: int,
    *,
    limit: int | None = None,
    wait_seconds: float | None = None,
    lease_seconds: int | None = None,
    cancelled: threading.Event | None = None,
    on_wait: Callable[[int, int], None] = lambda holders, limit: None,
) -> Iterator[None]:
    """Hold one of `limit` slots for (provider, workspace) while the block runs.

    Waits (polling Redis every 0.1-0.25 s) up to `wait_seconds` and raises NoSlot when none
    frees up in time; StepCancelled when `cancelled` is set while it waits. If Redis itself is
    unreachable the call goes ahead without a slot (logged): 429s are still retried.
    """
    limit = int(settings.RUNWAY_PROVIDER_CONCURRENCY if limit is None else limit)
    if limit <= 0:
        yield
        return
    wait = float(
        settings.RUNWAY_PROVIDER_SLOT_WAIT_SECONDS if wait_seconds is None else wait_seconds
    )
    lease = int(settings.RUNWAY_PROVIDER_LEASE_SECONDS if lease_seconds is None else lease_seconds)
    client = _redis(settings.REDIS_URL)
    key = slot_key(provider, workspace_id)
    token = uuid.uuid4().hex
    cancelled = cancelled or threading.Event()
    deadline = time.monotonic() + wait
    told = False
    pause = 0.1
    held: _Lease | None = None
    while True:
        try:
            taken, holders = client.eval(_ACQUIRE, 1, key, token, limit, lease)
        except redis.RedisError:
            logger.warning("provider slots unavailable; calling %s without one", provider)
            break
        if taken:
            held = _Lease(client, key, token, lease)
            held.start()
            break
        if not told:
            on_wait(int(holders), limit)
            told = True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoSlot(
                f"No free {provider} slot in {wait:g} s: {holders} calls of this workspace are "
                f"in flight (RUNWAY_PROVIDER_CONCURRENCY={limit})",
                int(holders),
            )
        # Waiting on the cancel event, not sleeping: Stop interrupts the wait at once.
        if cancelled.wait(min(pause, remaining)):
            raise StepCancelled
        pause = min(pause * 1.5, 0.25)
    try:
        yield
    finally:
        if held is not None:
            held.release()


def slot_for(
    provider: object,
    name: str,
    workspace_id: int,
    cancelled: threading.Event,
    log: Callable[[str], None],
) -> contextlib.AbstractContextManager[None]:
    """A slot for providers that call a shared remote service; nothing for local ones."""
    if not getattr(provider, "concurrency_limited", False):
        return contextlib.nullcontext()
    return provider_slot(
        name,
        workspace_id,
        cancelled=cancelled,
        on_wait=lambda holders, limit: log(
            f"Waiting for a provider slot: {holders} of {limit} {name} calls in flight"
        ),
    )
