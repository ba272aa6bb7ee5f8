"""A step past its timeout ends its run at once as a transient failure, whatever the hung call
does: the run never waits for the rescue sweep, and the call's late answer is discarded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from pipeline import engine, executor
from pipeline.models import Run
from pipeline.providers import _PROVIDERS, register_provider
from pipeline.providers.base import StepOutput, StepRequest
from skills.models import RecipeStep
from tests.conftest import make_story
from tests.engine_helpers import card
from tests.integration.processes import wait_until


class HungProvider:
    """A call that hangs and ignores Stop, like a socket nobody closes."""

    name = "hung"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(self, request: StepRequest) -> StepOutput:
        self.entered.set()
        self.release.wait(60)
        return StepOutput(text="# Late\n", data={"tasks": []})


@pytest.fixture
def hung(settings: Any) -> Iterator[HungProvider]:
    settings.RUNWAY_STEP_GRACE_SECONDS = 0.5
    provider = HungProvider()
    register_provider(provider)
    yield provider
    provider.release.set()
    _PROVIDERS.pop("hung", None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("retries", "outcome"), [(0, Run.Status.FAILED), (1, Run.Status.QUEUED)])
def test_a_timed_out_step_ends_its_run_at_once(
    hung: HungProvider, retries: int, outcome: str
) -> None:
    story = make_story()
    feature = card(story.workspace, at="tasks")
    RecipeStep.objects.filter(
        recipe__stage__key="tasks", recipe__stage__workspace=story.workspace
    ).update(provider="hung", timeout_seconds=1, retry_count=retries)
    run = engine.launch_pipeline(feature, story.owner).run

    def execute() -> None:
        try:
            executor.execute_run(run.pk, "worker/1")
        finally:
            connection.close()

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    assert hung.entered.wait(30)

    def ended() -> bool:
        run.refresh_from_db()
        return run.status != Run.Status.RUNNING

    wait_until(ended, timeout=30, what="the timed-out run to end")

    # Ended while the call still hangs: not by the rescue sweep, not by the call returning.
    assert not hung.release.is_set()
    assert worker.is_alive()
    assert run.status == outcome
    assert run.error_kind == Run.ErrorKind.TRANSIENT
    assert "generate-tasks timed out after 1 s" in run.error_message
    hung.release.set()
    worker.join(30)
    run.refresh_from_db()
    assert run.status == outcome  # the late answer changed nothing
    assert not feature.children.exists()
