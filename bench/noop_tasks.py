"""The plain-Celery baseline: a chain() of three no-op tasks on the same broker and workers.

Each task notes when it started and hands on when it finished, so a hop is measured the same
way as a Runway hop: previous step done → next step running.
"""

from __future__ import annotations

import time

import redis
from celery import shared_task
from django.conf import settings


@shared_task(name="bench.noop")
def noop(previous_end: float | None = None) -> float:
    started = time.time()
    if previous_end is not None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.rpush("bench:celery-hops", started - previous_end)
        client.close()
    return time.time()
