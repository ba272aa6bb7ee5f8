"""The plain-Celery baseline on the same broker and workers as Runway's runs.

* ``bench.noop``: a chain() of three no-op tasks; each notes when it started and hands on when
  it finished, so a hop is measured the same way as a Runway hop: previous step done → next
  step running.
* ``bench.noop_count``: a no-op task that notes when it started and ended, for bare Celery's
  tasks per second (first start → last end, as Runway's throughput is first claim → last
  completion).
"""

from __future__ import annotations

import time

import redis
from celery import shared_task
from django.conf import settings

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    # One pooled client per process: the baseline should not pay a connection per task.
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


@shared_task(name="bench.noop")
def noop(previous_end: float | None = None) -> float:
    started = time.time()
    if previous_end is not None:
        _redis().rpush("bench:celery-hops", started - previous_end)
    return time.time()


@shared_task(name="bench.noop_count")
def noop_count() -> None:
    started = time.time()
    client = _redis()
    pipe = client.pipeline(transaction=False)
    pipe.rpush("bench:celery-starts", started)
    pipe.rpush("bench:celery-ends", time.time())
    pipe.execute()
