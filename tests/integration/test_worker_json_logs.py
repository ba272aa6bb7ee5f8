"""A real worker with RUNWAY_LOG_FORMAT=json: its lines follow a run by its ids."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card
from tests.integration.processes import Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def json_stack(transactional_db: None, broker: redis.Redis) -> Iterator[Stack]:
    running = Stack({"RUNWAY_LOG_FORMAT": "json"})
    yield running
    running.stop()


def test_a_workers_json_lines_carry_the_run_card_workspace_attempt_and_worker(
    story, json_stack: Stack
) -> None:
    worker = json_stack.start_worker()
    feature = card(story.workspace)
    launched = engine.launch_pipeline(feature, story.owner)

    wait_until(
        lambda: (
            not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()
            and Run.objects.filter(feature=feature).count() == 2
        ),
        timeout=60,
        what="the pipeline to finish",
    )
    run = Run.objects.get(pk=launched.run.pk)

    def lines_of_the_run() -> list[dict]:
        found = []
        for line in worker.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)  # every JSON-looking line is whole JSON
                if record.get("run_id") == run.pk:
                    found.append(record)
        return found

    lines = wait_until(lines_of_the_run, timeout=30, what="the worker's lines for the run")
    step = next(r for r in lines if r["message"].startswith("Step 1/1"))
    assert step["process"] == "worker"
    assert step["card_id"] == feature.pk
    assert step["workspace_id"] == story.workspace.pk
    assert step["attempt"] == 1
    assert step["worker_id"] == run.worker_id
