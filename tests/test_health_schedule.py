"""features.health_schedule: beat's sweep sends one task per due check to the health queue;
sweeps never overlap; a check in flight is not due; each workspace gets at most its cap."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from config.celery import app
from features import health, health_schedule, tasks
from features.models import Feature
from tests.conftest import Story, make_story
from tests.factories import FeatureFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

CONFIG = {"type": "http", "url": "http://127.0.0.1:9/health", "every": "5m"}


@pytest.fixture(autouse=True)
def _clean_redis() -> Any:
    client = health_schedule.client()
    for key in client.scan_iter("runway:health:*"):
        client.delete(key)
    yield
    for key in client.scan_iter("runway:health:*"):
        client.delete(key)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The card ids the sweep sends to the health queue (recorded, not sent)."""
    ids: list[int] = []

    def apply_async(args: tuple[int], **kwargs: Any) -> None:
        assert kwargs["expires"] > CONFIG_TIMEOUT
        ids.append(args[0])

    monkeypatch.setattr(tasks.run_health_check, "apply_async", apply_async)
    return ids


CONFIG_TIMEOUT = 10


def live_cards(story: Story, count: int, workspace: Any = None) -> list[Feature]:
    workspace = workspace or story.workspace
    live = workspace.stages.get(key="live")
    return [
        FeatureFactory.create(
            workspace=workspace,
            stage=live,
            title=f"Live {i}",
            health_check=health.validate_health_check(CONFIG),
        )
        for i in range(count)
    ]


@pytest.fixture
def delivery(db: None) -> Story:
    return make_story("delivery")


def test_it_sends_one_task_per_due_check(delivery: Story, sent: list[int]) -> None:
    cards = live_cards(delivery, 3)

    assert health_schedule.enqueue_due_checks() == 3
    assert sorted(sent) == sorted(c.pk for c in cards)


def test_a_check_in_flight_is_not_due_again(delivery: Story, sent: list[int]) -> None:
    first, second = live_cards(delivery, 2)
    health_schedule.enqueue_due_checks()

    # Both are in flight now: a second sweep finds nothing due.
    assert [f.pk for f, _ in health.due_checks()] == []
    assert health_schedule.enqueue_due_checks() == 0
    # One finishes: only that one is due again.
    health_schedule.release_inflight(first.pk)
    assert [f.pk for f, _ in health.due_checks()] == [first.pk]
    assert sorted(sent) == sorted([first.pk, second.pk])


def test_the_task_ends_its_in_flight_mark_even_when_the_check_fails(delivery: Story) -> None:
    (card,) = live_cards(delivery, 1)
    Feature.objects.filter(pk=card.pk).update(health_check={"type": "nonsense"})
    assert health_schedule.claim_inflight(card.pk, 60)

    tasks.run_health_check(card.pk)

    assert health_schedule.inflight_ids([card.pk]) == set()


def test_sweeps_never_overlap(delivery: Story, sent: list[int]) -> None:
    live_cards(delivery, 2)
    held = health_schedule.client().lock(health_schedule.SWEEP_LOCK_KEY, timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert health_schedule.enqueue_due_checks() == 0
        assert sent == []
    finally:
        held.release()

    assert health_schedule.enqueue_due_checks() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_send_each_check_once(sent: list[int]) -> None:
    cards = live_cards(make_story("delivery"), 5)
    start = threading.Barrier(4)
    results: list[int] = []

    def sweep() -> None:
        start.wait()
        try:
            results.append(health_schedule.enqueue_due_checks())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(sent) == sorted(c.pk for c in cards)
    assert sum(results) == 5


def test_a_workspace_gets_at_most_its_cap_per_sweep(
    delivery: Story, sent: list[int], settings: Any
) -> None:
    settings.HEALTH_CHECK_MAX_PER_WORKSPACE = 2
    busy = live_cards(delivery, 4)
    other = WorkspaceFactory.create(slug="other", template="delivery", owner=delivery.outsider)
    quiet = live_cards(delivery, 1, workspace=other)

    assert health_schedule.enqueue_due_checks() == 3
    assert len([pk for pk in sent if pk in {c.pk for c in busy}]) == 2
    assert quiet[0].pk in sent


def test_health_tasks_are_routed_to_the_health_queue() -> None:
    router = app.amqp.router
    for name in ("features.run_due_health_checks", "features.run_health_check"):
        route = router.route({}, name, args=(1,), kwargs={})
        assert route["queue"].name == "health"
    route = router.route({}, "pipeline.execute_run", args=(1,), kwargs={})
    assert route["queue"].name == "runway"
