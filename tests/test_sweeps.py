"""The beat sweeps: re-dispatch lost messages, rescue runs whose worker went silent."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card, chain


def test_dispatch_resends_a_run_whose_message_was_lost(story, eager, no_enqueue, broker):
    # The sweep rightly holds back while the broker holds as many messages as runs are due.
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


def test_a_heartbeat_that_lands_after_the_scan_prevents_the_requeue(story, no_enqueue, monkeypatch):
    from pipeline.engine import sweeps

    feature = card(story.workspace)
    with no_enqueue() as sent:
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "slow-worker/1")
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
        requeue = sweeps.requeue_lost

        def heartbeat_then_requeue(*args, **kwargs):
            # The worker's heartbeat lands between the sweep's scan and its UPDATE.
            Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
            return requeue(*args, **kwargs)

        monkeypatch.setattr(sweeps, "requeue_lost", heartbeat_then_requeue)
        assert engine.rescue_stale_running() == (0, 0)

    run.refresh_from_db()
    assert (run.status, run.attempt, run.worker_id) == ("running", 1, "slow-worker/1")
    assert not run.logs.filter(message__startswith="Rescued").exists()
    enqueued = [c for c in sent if getattr(c, "func", None) is engine.enqueue]
    assert len(enqueued) == 1  # only the launch's message: nothing re-sent


def test_a_claim_takes_over_a_running_run_whose_worker_went_silent(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        first = engine.claim_run(run.pk, "dead-worker/1")
        assert first is not None
        # Its worker is alive (fresh heartbeat): a second delivery takes nothing.
        assert engine.claim_run(run.pk, "other-worker/2") is None
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
        second = engine.claim_run(run.pk, "other-worker/2")

    assert second is not None
    assert (second.status, second.attempt, second.worker_id) == ("running", 2, "other-worker/2")
    assert second.logs.filter(message__startswith="Taken over by other-worker/2").exists()
    # The silent worker's late writes are fenced off by the attempt.
    assert engine.record_step(run.pk, first.attempt, [], {}) is False
    assert engine.complete_run(run.pk, first.attempt, [], {}) is False


def test_a_takeover_past_the_last_attempt_fails_the_run_clearly(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "dead-worker/1")
        Run.objects.filter(pk=run.pk).update(
            attempt=5, max_attempts=5, heartbeat_at=timezone.now() - timedelta(minutes=2)
        )
        assert engine.claim_run(run.pk, "other-worker/2") is None

    run.refresh_from_db()
    assert (run.status, run.error_kind) == ("failed", "lost")
    assert "Gave up after 5 attempts" in run.error_message
    feature.refresh_from_db()
    assert feature.status == Feature.Status.FAILED


def test_sweeps_run_once_per_interval_whoever_asks(story, no_enqueue, settings):
    settings.RUNWAY_SWEEP_SECONDS = 60
    now = timezone.now()
    with no_enqueue():
        assert engine.sweep_if_due("beat", now=now) == {
            "dispatched": 0,
            "requeued": 0,
            "failed": 0,
            "released": 0,
        }
        assert engine.sweep_if_due("worker@a", now=now + timedelta(seconds=5)) is None
        assert engine.sweep_if_due("beat-2", now=now + timedelta(seconds=59)) is not None

    status = engine.sweep_status()
    assert status["ok"] is True
    assert status["by"] == "beat-2"
