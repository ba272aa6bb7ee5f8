"""The beat sweeps: re-dispatch lost messages, rescue runs whose worker went silent."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card, chain


def test_dispatch_resends_a_run_whose_message_was_lost(story, eager, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():  # the launch's message is "lost": never sent
        run = engine.launch_pipeline(feature, story.owner).run
    Run.objects.filter(pk=run.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    with eager():
        assert engine.dispatch_stale_queued() == 1
    assert [(r.stage.key, r.status) for r in chain(feature)] == [
        ("architecture", "succeeded"),
        ("tasks", "succeeded"),
    ]
    assert run.logs.filter(message__startswith="Re-dispatched").exists()


def test_dispatch_leaves_fresh_and_backing_off_runs_alone(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        assert engine.dispatch_stale_queued() == 0
        Run.objects.filter(pk=run.pk).update(
            queued_at=timezone.now() - timedelta(minutes=5),
            next_attempt_at=timezone.now() + timedelta(seconds=20),
        )
        assert engine.dispatch_stale_queued() == 0


def test_rescue_requeues_a_silent_run_while_attempts_remain(story, eager, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "dead-worker/1")
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    with eager():
        assert engine.rescue_stale_running() == (1, 0)
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("succeeded", 2)
    assert run.logs.filter(message__startswith="Rescued after attempt 1").exists()
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_rescue_fails_a_run_that_used_all_its_attempts_with_a_clear_message(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "dead-worker/1")
        Run.objects.filter(pk=run.pk).update(
            attempt=5, max_attempts=5, heartbeat_at=timezone.now() - timedelta(minutes=2)
        )
        assert engine.rescue_stale_running() == (0, 1)
    run.refresh_from_db()
    assert (run.status, run.error_kind) == ("failed", "lost")
    assert "Gave up after 5 attempts" in run.error_message
    assert "Check the workers, then Retry" in run.error_message
    feature.refresh_from_db()
    assert feature.status == Feature.Status.FAILED


def test_rescue_leaves_runs_with_a_fresh_heartbeat_alone(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "live-worker/1")
        assert engine.rescue_stale_running() == (0, 0)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING
