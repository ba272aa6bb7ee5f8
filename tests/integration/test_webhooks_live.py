"""Webhooks from real Celery workers (the pipeline's and the outbound pool) to a real HTTP
receiver on 127.0.0.1: a whole pipeline's events, signed, once each, in order per run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings as django_settings

from features.models import Feature
from notifications.actions import do_create_webhook
from notifications.models import Delivery, Event
from pipeline import engine
from pipeline.models import Run
from skills.models import StageRecipe
from tests.engine_helpers import card, chain, stage
from tests.integration.processes import Stack, wait_until
from tests.test_webhooks import readme_verify
from tests.webhook_receiver import receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def notify_stack(
    transactional_db: None, broker: redis.Redis, request: pytest.FixtureRequest, settings
) -> Iterator[Stack]:
    broker.delete(django_settings.RUNWAY_NOTIFY_QUEUE)  # earlier tests' messages
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1"]  # in this process: the save-time check
    running = Stack({"RUNWAY_OUTBOUND_ALLOW": "127.0.0.1", "RUNWAY_WEBHOOK_BACKOFF_SECONDS": "0.3"})
    running.start_beat()
    running.start_worker()
    running.start_health_worker(concurrency=4)
    yield running
    running.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(running.logs())


def idle(feature: Feature) -> bool:
    return not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()


def events_of(got) -> list[dict]:
    return [json.loads(r.body) for r in got.acknowledged()]


def test_a_whole_pipeline_sends_signed_events_once_each_in_order_per_run(story, notify_stack):
    workspace = story.workspace
    StageRecipe.objects.filter(stage=stage(workspace, "architecture")).update(
        automation=StageRecipe.Automation.AUTO_NOTIFY
    )
    StageRecipe.objects.filter(stage=stage(workspace, "tasks")).update(
        automation=StageRecipe.Automation.HUMAN_APPROVAL
    )
    with receiver() as got:
        _, secret = do_create_webhook(
            workspace, story.owner, url=got.url, events=[], format="runway"
        )
        feature = card(workspace)
        engine.launch_pipeline(feature, story.owner)

        def sent(kind: str) -> bool:
            return any(e["type"] == kind for e in events_of(got))

        wait_until(lambda: sent("run.awaiting_decision"), timeout=60, what="awaiting_decision")
        engine.accept_run(chain(feature)[0], story.owner)
        wait_until(lambda: sent("run.awaiting_start"), timeout=60, what="awaiting_start")
        engine.start_run(chain(feature)[-1], story.teammate)
        wait_until(lambda: sent("pipeline.finished"), timeout=60, what="pipeline.finished")
        wait_until(lambda: idle(feature), timeout=30, what="the pipeline to end")
        requests = got.acknowledged()

    verify = readme_verify()
    assert all(verify(secret, r.headers["x-runway-signature"], r.body) for r in requests)
    bodies = [json.loads(r.body) for r in requests]
    ids = [b["id"] for b in bodies]
    assert len(ids) == len(set(ids))  # each event acknowledged once
    assert ids == [e.event_id for e in Event.objects.order_by("id")]  # in the order they happened
    first, second = chain(feature)
    per_run: dict[int, list[str]] = {}
    for body in bodies:
        per_run.setdefault(body["run"]["id"], []).append(body["type"])
    assert per_run == {
        first.pk: ["run.awaiting_decision"],
        second.pk: ["run.awaiting_start", "pipeline.finished"],
    }
    finished = bodies[-1]
    assert finished["card"]["id"] == feature.pk
    names = {a["name"] for a in finished["data"]["produced"]["artifacts"]}
    assert "architecture.md" in names
    assert finished["data"]["produced"]["child_cards"] > 0


def test_a_receiver_failing_three_times_gets_each_event_acknowledged_once(story, notify_stack):
    with receiver(statuses=[500, 502, 503]) as got:
        hook, _ = do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        features = [card(story.workspace, f"Feature {n}") for n in range(3)]
        for feature in features:
            engine.launch_pipeline(feature, story.owner)
        wait_until(
            lambda: len(got.acknowledged()) == 3, timeout=90, what="three acknowledged events"
        )
        wait_until(
            lambda: not Delivery.objects.filter(status="pending").exists(),
            timeout=30,
            what="no delivery left pending",
        )
        tries = got.all()
        acknowledged = got.acknowledged()

    ids = [json.loads(r.body)["id"] for r in acknowledged]
    assert sorted(ids) == sorted(e.event_id for e in Event.objects.all())
    assert len(set(ids)) == 3
    assert [r.status for r in tries][:4] == [500, 502, 503, 200]
    assert len(tries) == 6
    deliveries = list(Delivery.objects.filter(webhook=hook).order_by("event_id"))
    assert [(d.status, d.attempts) for d in deliveries] == [
        ("delivered", 4),
        ("delivered", 1),
        ("delivered", 1),
    ]
    page = story.client_for(story.owner).get(f"/w/{story.workspace.slug}/webhooks/{hook.pk}/")
    html = page.content.decode()
    assert html.count("HTTP 500") == 1
    assert "<span data-attempts>4</span>" in html
