"""A database that could not answer (restart, dropped connection) never fails a run for good:
claiming, recording a step and completing are retried or left for rescue to resume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone

from pipeline import engine, executor, tasks
from pipeline.models import Run
from tests.conftest import Story
from tests.engine_helpers import card, chain

pytestmark = pytest.mark.django_db

RESTARTING = "terminating connection due to administrator command"


def failing_once(real: Any, *, after: bool = False) -> Any:
    """`real`, except that its first call raises like a restarting PostgreSQL (before doing
    anything, or `after` it committed: the answer was lost on the way back)."""
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1 and not after:
            raise OperationalError(RESTARTING)
        result = real(*args, **kwargs)
        if calls["n"] == 1:
            raise OperationalError(RESTARTING)
        return result

    call.calls = calls  # type: ignore[attr-defined]
    return call


@pytest.fixture
def quick_retries(settings: Any) -> None:
    settings.RUNWAY_DB_RETRY_SECONDS = 5


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_fault_while_completing_is_retried_with_the_stored_outputs(
    story: Story, eager: Any, monkeypatch: Any, quick_retries: None, after_commit: bool
) -> None:
    monkeypatch.setattr(
        engine, "complete_run", failing_once(engine.complete_run, after=after_commit)
    )
    feature = card(story.workspace)

    with eager():
        engine.launch_pipeline(feature, story.owner)

    assert [(r.stage.key, r.status, r.attempt) for r in chain(feature)] == [
        ("architecture", "succeeded", 1),
        ("tasks", "succeeded", 1),
    ]
    first = chain(feature)[0]
    assert not first.logs.filter(message__contains="Could not store").exists()
    assert not first.logs.filter(message__startswith="Result discarded").exists()
    assert engine.complete_run.calls["n"] >= 2  # type: ignore[attr-defined]


def test_a_fault_while_recording_a_step_leaves_the_run_for_rescue_to_resume(
    delivery_story: Story, eager: Any, monkeypatch: Any, settings: Any
) -> None:
    settings.RUNWAY_DB_RETRY_SECONDS = 0  # the database stays away past the retries
    real = engine.record_step
    monkeypatch.setattr(engine, "record_step", failing_once(real))
    feature = card(delivery_story.workspace, at="spec-review")  # two steps: one is recorded

    with eager():
        run = engine.launch_pipeline(feature, delivery_story.owner).run

    run.refresh_from_db()
    assert (run.status, run.attempt) == (Run.Status.RUNNING, 1)  # not failed: recoverable
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    with eager():
        assert engine.rescue_stale_running() == (1, 0)

    run.refresh_from_db()
    assert (run.status, run.attempt) == (Run.Status.SUCCEEDED, 2)


def test_a_fault_while_claiming_sends_the_message_again(
    story: Story, no_enqueue: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(engine, "claim_run", failing_once(engine.claim_run))
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run

    with no_enqueue():
        # Eager Celery runs a task's retry at once, where a worker would send the message again.
        result = tasks.execute_run.apply((run.pk,))

    assert result.state == "SUCCESS"
    assert engine.claim_run.calls["n"] == 2  # type: ignore[attr-defined]
    run.refresh_from_db()
    assert (run.status, run.attempt) == (Run.Status.SUCCEEDED, 1)


def test_a_fault_inside_a_step_is_transient_not_an_internal_error(
    story: Story, no_enqueue: Any, monkeypatch: Any, quick_retries: None
) -> None:
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
    monkeypatch.setattr(executor, "build_inputs", failing_once(executor.build_inputs))

    with no_enqueue():
        tasks.execute_run(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (Run.Status.QUEUED, Run.ErrorKind.TRANSIENT)
    assert "database unavailable" in run.error_message
