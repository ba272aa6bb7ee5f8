"""Sweeps are safe with two beats (or many workers) at once: real threads on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from pipeline import engine
from pipeline.models import Run
from tests.conftest import make_story
from tests.engine_helpers import card

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrency is tested on PostgreSQL"
)


def all_at_once(count: int, target: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = target(i)
        except BaseException as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_rescue_a_silent_run_once(no_enqueue: Any) -> None:
    story = make_story()
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "dead-worker/1")
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
        results = all_at_once(2, lambda _: engine.rescue_stale_running())

    assert sorted(results) == [(0, 0), (1, 0)], results
    assert run.logs.filter(message__startswith="Rescued after attempt 1").count() == 1
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("queued", 1)


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_take_the_lease_once() -> None:
    now = timezone.now()

    results = all_at_once(4, lambda i: engine.sweep_if_due(f"sweeper-{i}", now=now))

    assert sum(r is not None for r in results) == 1, results
