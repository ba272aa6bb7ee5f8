"""Batches on real worker processes: generate subtasks for all of an epic's stories under the
workspace's run limit, survive a SIGKILLed worker with no story done twice, and run a whole
tree in dependency order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis

from features.models import Artifact, Feature
from pipeline import engine
from pipeline.models import Batch, Generation, Run, RunLog
from tests.conftest import Story
from tests.integration.processes import Stack, wait_until
from tests.tree_helpers import edges, epic, stories

pytestmark = pytest.mark.integration

# Each offline step takes this long, so runs overlap as they would with a model.
STEP_SECONDS = "0.5"


@pytest.fixture
def slow_stack(
    transactional_db: None, broker: redis.Redis, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    running = Stack({"RUNWAY_OFFLINE_DELAY_SECONDS": STEP_SECONDS})
    running.start_beat()
    yield running
    running.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(running.logs())


def idle(feature: Feature) -> bool:
    return not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()


def planned_epic(story: Story, *, at: str | None = None) -> Feature:
    """An epic whose own pipeline, run by the workers, wrote its six stories."""
    parent = epic(story.workspace, at=at)
    engine.launch_pipeline(parent, story.owner)
    wait_until(
        lambda: idle(parent) and len(stories(parent)) == 6,
        timeout=120,
        what="the epic's pipeline to write its stories",
    )
    return parent


def finished(batch: Batch, timeout: float = 180) -> Batch:
    wait_until(
        lambda: Batch.objects.filter(pk=batch.pk, finished_at__isnull=False).exists(),
        timeout=timeout,
        what=f"batch #{batch.pk} to finish",
    )
    return Batch.objects.get(pk=batch.pk)


def intervals(batch: Batch) -> list[tuple[datetime, datetime]]:
    """When each run of the batch was really running: from its claim's first log line (written
    after the claim committed) to when its result was stored."""
    spans = []
    for run in Run.objects.filter(batch=batch):
        started = (
            RunLog.objects.filter(run=run, message__startswith="Attempt ")
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        assert started is not None, run
        assert run.finished_at is not None, run
        spans.append((started, run.finished_at))
    return spans


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    # An end sorts before a start at the same instant: the slot was free again.
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


def assert_each_story_done_once(parent: Feature, batch: Batch) -> None:
    for user_story in stories(parent):
        runs = Run.objects.filter(feature=user_story)
        assert runs.filter(status=Run.Status.SUCCEEDED).count() == 1, user_story
        assert runs.get(status=Run.Status.SUCCEEDED).batch_id == batch.pk
        (generation,) = Generation.objects.filter(parent=user_story)
        tasks = Artifact.objects.get(feature=user_story, name="tasks.json")
        assert tasks.version == 1  # generated once…
        assert Artifact.objects.get(feature=user_story, name="acceptance-criteria.md").version == 1
        subtasks = user_story.children.filter(kind=Feature.Kind.TASK)
        assert (
            subtasks.count() == len(tasks.data["tasks"]) == len(generation.added)
        )  # …applied once


def test_generate_for_all_runs_at_most_the_workspaces_limit_at_once(
    product_story: Story, slow_stack: Stack
) -> None:
    limit = product_story.workspace.max_concurrent_runs
    assert limit == 3  # the default: 2-3 at once
    for _ in range(2):  # four worker processes: more than the limit
        slow_stack.start_worker(concurrency=2)
    parent = planned_epic(product_story)  # the whole product template, inbox to tickets

    started = engine.generate_subtasks(parent, product_story.owner)

    batch = finished(started.batch)
    assert batch.summary["failed"] == 0
    peak = most_at_once(intervals(batch))
    assert 2 <= peak <= limit, peak
    assert_each_story_done_once(parent, batch)
    deferred = RunLog.objects.filter(
        run__batch=batch, message__startswith="Waiting for a free slot"
    )
    assert deferred.exists() or peak == limit


def test_a_worker_killed_mid_batch_and_restarted_finishes_it_with_no_story_done_twice(
    product_story: Story, slow_stack: Stack
) -> None:
    worker = slow_stack.start_worker(concurrency=2)
    parent = planned_epic(product_story, at="tickets")
    started = engine.generate_subtasks(parent, product_story.owner)
    wait_until(
        lambda: Run.objects.filter(batch=started.batch, status=Run.Status.RUNNING).exists(),
        timeout=60,
        what="the batch's first runs to start",
    )

    worker.kill()  # SIGKILL mid-batch: its runs stay "running" with no heartbeat
    slow_stack.start_worker(concurrency=2)

    batch = finished(started.batch)
    assert batch.summary["failed"] == 0
    attempts = list(Run.objects.filter(batch=batch).values_list("attempt", flat=True))
    assert max(attempts) >= 2, attempts  # a run the killed worker held was taken over
    assert_each_story_done_once(parent, batch)


def test_a_whole_tree_runs_its_stories_in_dependency_order(
    product_story: Story, slow_stack: Stack
) -> None:
    for _ in range(2):
        slow_stack.start_worker(concurrency=2)
    parent = planned_epic(product_story, at="tickets")

    started = engine.launch_tree(parent, product_story.owner)

    batch = finished(started.batch)
    planned = {s.pk: s for s in stories(parent)}
    runs: dict[int, Any] = {
        r.feature_id: r for r in Run.objects.filter(batch=batch, status=Run.Status.SUCCEEDED)
    }
    assert set(runs) == set(planned)
    for dependent, dependency in edges(list(planned.values())):
        assert runs[dependent].started_at >= runs[dependency].finished_at
    # Stories that only wait for the same one may run side by side.
    assert most_at_once(intervals(batch)) >= 2
