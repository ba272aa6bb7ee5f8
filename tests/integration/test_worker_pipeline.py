"""Pipelines on real Celery worker processes, real Redis and the test database."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from features.models import Artifact, Feature, Workspace
from pipeline import engine
from pipeline.models import Run, RunLog
from tests.engine_helpers import card, chain, stage
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration


def finished(feature: Feature, stage_key: str):
    def check() -> bool:
        feature.refresh_from_db()
        return (
            feature.stage.key == stage_key
            and not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()
        )

    return check


def test_a_three_stage_pipeline_completes_with_the_chain_fields_right(product_story, stack):
    workspace = product_story.workspace
    Workspace.objects.filter(pk=workspace.pk).update(stop_stage=stage(workspace, "design"))
    stack.start_worker()
    feature = card(workspace, title="Mobile app")
    launched = engine.launch_pipeline(feature, product_story.owner)
    assert launched.pipeline == ["inbox", "discovery", "prd"]

    wait_until(finished(feature, "design"), timeout=60, what="the pipeline to reach design")
    runs = chain(feature)
    assert [(r.stage.key, r.status, r.attempt) for r in runs] == [
        ("inbox", "succeeded", 1),
        ("discovery", "succeeded", 1),
        ("prd", "succeeded", 1),
    ]
    assert [r.parent_run_id for r in runs] == [None, runs[0].pk, runs[1].pk]
    assert [r.pipeline_next for r in runs] == [["discovery", "prd"], ["prd"], []]
    # Each run started only after its parent's result was stored.
    for parent, child in itertools.pairwise(runs):
        assert child.started_at is not None
        assert parent.finished_at is not None
        assert child.started_at >= parent.finished_at
        assert Artifact.objects.filter(run=parent).exists()
    assert all(r.worker_id.startswith("w") for r in runs)


def test_a_worker_killed_mid_step_is_rescued_and_the_step_runs_once_more(story, stack):
    first_worker = stack.start_worker()
    feature = card(story.workspace, description="Slow. [offline:delay=2@write-architecture]")
    launched = engine.launch_pipeline(feature, story.owner)
    wait_until(
        lambda: RunLog.objects.filter(run=launched.run, message__startswith="Step 1/1").exists(),
        timeout=30,
        what="the first step to start",
    )
    first_worker.kill()
    stack.start_worker()

    wait_until(finished(feature, "done"), timeout=90, what="the pipeline to finish after the kill")
    runs = chain(feature)
    assert [(r.stage.key, r.status) for r in runs] == [
        ("architecture", "succeeded"),
        ("tasks", "succeeded"),
    ]
    assert runs[0].attempt == 2
    assert runs[0].logs.filter(message__startswith="Rescued after attempt 1").exists()
    assert Artifact.objects.filter(feature=feature, name="architecture.md").count() == 1
    tasks = feature.children.all()
    assert tasks.count() == len({t.source_index for t in tasks})


def test_a_lost_message_is_run_by_the_dispatch_sweep(story, stack, broker):
    feature = card(story.workspace)
    run = engine.launch_pipeline(feature, story.owner).run
    assert broker.delete("runway") == 1  # the message is gone before any worker saw it
    stack.start_worker()
    wait_until(finished(feature, "done"), timeout=60, what="the dispatch sweep to rescue the run")
    assert RunLog.objects.filter(run=run, message__startswith="Re-dispatched").exists()
    assert [r.status for r in chain(feature)] == ["succeeded", "succeeded"]


def test_stop_mid_pipeline_means_nothing_advances_afterwards(story, stack):
    stack.start_worker()
    feature = card(story.workspace, description="Slow. [offline:delay=30]")
    run = engine.launch_pipeline(feature, story.owner).run
    wait_until(
        lambda: RunLog.objects.filter(run=run, message__startswith="Step 1/1").exists(),
        timeout=30,
        what="the step to start",
    )
    assert engine.stop_pipeline(feature, story.owner) == 1
    # The worker notices on its next heartbeat and abandons the step.
    wait_until(
        lambda: RunLog.objects.filter(run=run, message__startswith="Step interrupted").exists(),
        timeout=30,
        what="the worker to abandon the cancelled step",
    )
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert len(chain(feature)) == 1
    assert not Artifact.objects.filter(feature=feature).exists()
    feature.refresh_from_db()
    assert feature.stage.key == "architecture"


def test_transient_errors_retry_on_the_worker_and_permanent_ones_fail_at_once(story, stack):
    stack.start_worker()
    flaky = card(story.workspace, title="Flaky", description="[offline:fail=transient:1]")
    broken = card(story.workspace, title="Broken", description="[offline:fail=permanent]")
    engine.launch_pipeline(flaky, story.owner)
    engine.launch_pipeline(broken, story.owner)
    wait_until(finished(flaky, "done"), timeout=60, what="the flaky pipeline to finish")
    wait_until(
        lambda: Run.objects.filter(feature=broken, status=Run.Status.FAILED).exists(),
        timeout=60,
        what="the broken run to fail",
    )
    assert [r.attempt for r in chain(flaky)] == [2, 2]
    (failed,) = chain(broken)
    assert (failed.attempt, failed.error_kind) == (1, Run.ErrorKind.PERMANENT)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_launches_make_one_pipeline(story, broker):
    feature = card(story.workspace)

    def launch(_: int) -> str:
        try:
            engine.launch_pipeline(Feature.objects.get(pk=feature.pk), story.owner)
            return "launched"
        except engine.AlreadyRunning:
            return "already running"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(launch, range(50)))
    assert outcomes.count("launched") == 1
    assert outcomes.count("already running") == 49
    assert Run.objects.filter(feature=feature).count() == 1
