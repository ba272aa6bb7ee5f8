"""When health checks run: beat's sweep finds the due ones and sends one task per check to the
health queue, which its own worker pool consumes, so a slow check never delays a pipeline.

- Sweeps never overlap: each holds a Redis lock (redis-py's Lock, with an expiry so a killed
  sweep cannot hold it forever); a sweep that finds it taken does nothing.
- A check in flight is not due again: it holds an "in flight" key (SET NX with an expiry of its
  time limit plus a margin) from the sweep that sends it until the check ends, and its message
  expires with the key, so a stopped health worker never comes back to a pile of stale checks.
- A workspace gets at most HEALTH_CHECK_MAX_PER_WORKSPACE checks per sweep (and may only set
  that many), so one tenant cannot fill the queue for all the others.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from datetime import datetime

import redis
from django.conf import settings
from django.utils import timezone

from features.models import Feature

logger = logging.getLogger(__name__)

SWEEP_LOCK_KEY = "runway:health:sweep"
SWEEP_LOCK_SECONDS = 55  # shorter than beat's minute: a crashed sweep never skips two
INFLIGHT_MARGIN_SECONDS = 60


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def client() -> redis.Redis:
    return _redis(settings.REDIS_URL)


def inflight_key(feature_id: int) -> str:
    return f"runway:health:inflight:{feature_id}"


def inflight_ids(feature_ids: list[int]) -> set[int]:
    """Which of these cards have a check in flight now."""
    if not feature_ids:
        return set()
    values = client().mget([inflight_key(pk) for pk in feature_ids])
    return {pk for pk, value in zip(feature_ids, values, strict=True) if value is not None}


def claim_inflight(feature_id: int, seconds: int) -> bool:
    """Mark the card's check in flight for `seconds`; False if it already is."""
    return bool(client().set(inflight_key(feature_id), 1, nx=True, ex=seconds))


def release_inflight(feature_id: int) -> None:
    client().delete(inflight_key(feature_id))


def enqueue_due_checks(now: datetime | None = None) -> int:
    """Beat's minute task: send each due check (not in flight, within its workspace's cap) to
    the health queue as its own task. Returns how many were sent; 0 when another sweep holds
    the lock."""
    from features import health, tasks

    lock = client().lock(SWEEP_LOCK_KEY, timeout=SWEEP_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        logger.info("health sweep skipped: another sweep is still running")
        return 0
    try:
        cap = settings.HEALTH_CHECK_MAX_PER_WORKSPACE
        per_workspace: Counter[int] = Counter()
        sent = 0
        for feature, config in health.due_checks(now or timezone.now()):
            if per_workspace[feature.workspace_id] >= cap:
                continue
            ttl = int(config["timeout"]) + INFLIGHT_MARGIN_SECONDS
            if not claim_inflight(feature.pk, ttl):
                continue
            per_workspace[feature.workspace_id] += 1
            tasks.run_health_check.apply_async((feature.pk,), expires=ttl)
            sent += 1
        return sent
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            logger.warning("health sweep outlived its lock (%s s)", SWEEP_LOCK_SECONDS)


def run_check(feature_id: int) -> None:
    """The health queue's task: run one card's check, then let it be due again."""
    from features import health

    try:
        feature = Feature.objects.select_related("workspace", "stage").filter(pk=feature_id).first()
        if feature is None or not feature.stage.is_live:
            return
        try:
            health.run_health_check(feature)
        except health.HealthCheckError as exc:
            logger.warning("health check of card %s not run: %s", feature_id, exc)
    finally:
        release_inflight(feature_id)
