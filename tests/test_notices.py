"""What the engine and the card domain tell notifications: one event per happening, in the
happening's transaction, and none for a short wait or a repeated budget refusal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from features import health
from features.models import Workspace
from notifications.models import Event
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card
from tests.factories import FeatureFactory
from tests.http_servers import http_server


def kinds() -> list[str]:
    return list(Event.objects.order_by("id").values_list("kind", flat=True))


def test_a_permanent_failure_is_a_run_failed_event(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "w/1")
        engine.fail_run(run.pk, 1, "The provider refused the key")
    (event,) = Event.objects.all()
    assert (event.kind, event.run_id, event.feature) == ("run.failed", run.pk, feature)
    assert "The provider refused the key" in event.text
    assert event.payload["run"]["status"] == "failed"


def test_a_silent_worker_is_told_once_per_rescue_and_a_last_one_fails_the_run(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        engine.claim_run(run.pk, "dead-worker/1")
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
        assert engine.rescue_stale_running() == (1, 0)
        engine.claim_run(run.pk, "dead-worker/2")
        Run.objects.filter(pk=run.pk).update(
            attempt=5, max_attempts=5, heartbeat_at=timezone.now() - timedelta(minutes=2)
        )
        assert engine.rescue_stale_running() == (0, 1)
    assert kinds() == ["worker.gone", "run.failed"]


def test_a_reached_budget_is_told_once_a_day_however_often_runs_try(story, eager, no_enqueue):
    spent = card(story.workspace, "Spent")
    with eager():
        engine.launch_pipeline(spent, story.owner)
    Run.objects.filter(feature=spent).update(cost_usd=Decimal("20"))
    Workspace.objects.filter(pk=story.workspace.pk).update(monthly_budget_usd=Decimal("10"))
    Event.objects.all().delete()
    with no_enqueue():
        for n in range(3):
            run = engine.launch_pipeline(card(story.workspace, f"Held {n}"), story.owner).run
            assert engine.claim_run(run.pk, "w/1") is None
    (event,) = Event.objects.all()
    assert event.kind == "budget.reached"
    assert event.payload["card"] is None
    assert event.text.startswith("Budget reached: $40.00 of $10.00")  # two runs of $20


def test_slots_exhausted_is_told_only_after_a_long_wait(story, no_enqueue, settings):
    settings.RUNWAY_SLOTS_NOTICE_SECONDS = 600
    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=1)
    with no_enqueue():
        busy = engine.launch_pipeline(card(story.workspace, "Busy"), story.owner).run
        assert engine.claim_run(busy.pk, "w/1") is not None
        waiting = engine.launch_pipeline(card(story.workspace, "Waiting"), story.owner).run
        assert engine.claim_run(waiting.pk, "w/2") is None
        assert kinds() == []  # a short wait for a slot is nobody's business
        Run.objects.filter(pk=waiting.pk).update(
            queued_at=timezone.now() - timedelta(minutes=11), next_attempt_at=None
        )
        assert engine.claim_run(waiting.pk, "w/2") is None
        Run.objects.filter(pk=waiting.pk).update(next_attempt_at=None)
        assert engine.claim_run(waiting.pk, "w/2") is None
    assert kinds() == ["slots.exhausted"]


def test_a_failing_health_check_and_its_recovery_are_told(delivery_story, no_enqueue, settings):
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    with http_server(status=500) as server:
        feature = FeatureFactory.create(
            workspace=delivery_story.workspace,
            title="Invoice extractor",
            stage=delivery_story.workspace.stages.get(key="live"),
            health_check=health.validate_health_check({"type": "http", "url": server.url()}),
        )
        with no_enqueue():
            health.run_health_check(feature)
            server.behaviour.status = 200
            health.run_health_check(feature)
    failing, recovered = (e for e in Event.objects.order_by("id") if e.kind.startswith("health"))
    assert failing.kind == "health.failing"
    assert "Invoice extractor" in failing.text
    assert failing.payload["data"]["checked_feature_id"] == feature.pk
    assert recovered.kind == "health.recovered"
    assert recovered.feature == failing.feature  # the incident card


def test_a_finished_pipeline_tells_the_card_and_run_as_they_ended(story, eager):
    """The completion hands its own card and run to the listener (no second read): the event
    must still say what the database says once the pipeline committed."""
    feature = card(story.workspace, "Checkout")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (event,) = Event.objects.filter(kind="pipeline.finished")
    feature.refresh_from_db()
    last = Run.objects.filter(feature=feature).select_related("stage").latest("id")
    told = {k: v for k, v in event.payload["card"].items() if k != "status"}
    assert told == {
        "id": feature.pk,
        "title": "Checkout",
        "kind": feature.kind,
        "stage": feature.stage.key,
    }
    assert event.payload["run"]["id"] == last.pk
    assert (event.payload["run"]["stage"], event.payload["run"]["status"]) == (
        last.stage.key,
        "succeeded",
    )
    assert event.payload["workspace"]["slug"] == story.workspace.slug
    produced = event.payload["data"]["produced"]
    assert produced["child_cards"] == feature.children.count() > 0
    assert produced["artifacts"] == [
        {"name": "architecture.md", "version": 1},
        {"name": "tasks.json", "version": 1},
    ]
