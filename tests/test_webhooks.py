"""Webhooks against a real HTTP receiver on 127.0.0.1, sent in-process (the worker's code
path, without a broker): signature, retries, order, failures, pause and the deliveries log."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from features import notices
from notifications import actions, delivery, signing
from notifications.models import Delivery, Event, Webhook
from pipeline import engine
from skills.models import StageRecipe
from tests.engine_helpers import card, stage
from tests.webhook_receiver import receiver

ROOT = Path(django_settings.BASE_DIR)


@pytest.fixture
def loopback_allowed(settings):
    # The operator's allow-list: the receiver lives on loopback, which is refused by default.
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1"]
    settings.RUNWAY_WEBHOOK_BACKOFF_SECONDS = 0


def set_automation(workspace, key: str, level: str) -> None:
    StageRecipe.objects.filter(stage=stage(workspace, key)).update(automation=level)


def readme_verify():
    """The verification snippet from README "Notifications", run as written."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- signature-snippet -->\n```python\n(.*?)```", text, re.S)
    assert code is not None, "README lost its signature snippet"
    namespace: dict = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102
    return namespace["verify"]


def emit_awaiting_decision(story, eager):
    set_automation(story.workspace, "architecture", StageRecipe.Automation.AUTO_NOTIFY)
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    return feature


def test_a_url_to_a_private_address_is_refused(story):
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/"):
        with pytest.raises(actions.WebhookError, match="not allowed"):
            actions.do_create_webhook(
                story.workspace, story.owner, url=url, events=[], format="runway"
            )
    with pytest.raises(actions.WebhookError, match="http"):
        actions.do_create_webhook(
            story.workspace, story.owner, url="file:///etc/passwd", events=[], format="runway"
        )
    assert not Webhook.objects.exists()


def test_the_page_refuses_a_private_address_with_a_message_and_writes_nothing(story):
    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/notifications/",
        {"url": "http://192.168.1.10/hook", "format": "runway"},
    )
    assert response.status_code == 422
    assert "private address" in response.content.decode()
    assert not Webhook.objects.exists()


def test_the_secret_is_shown_once_and_the_database_cannot_give_it_back(story, loopback_allowed):
    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/notifications/",
        {"url": "http://127.0.0.1:9/hook", "format": "runway", "events": ["run.failed"]},
    )
    assert response.status_code == 200
    shown = re.search(r"data-secret>(whsec_[0-9a-f]+)<", response.content.decode())
    assert shown is not None
    secret = shown.group(1)
    webhook = Webhook.objects.get()
    assert webhook.events == ["run.failed"]
    stored = json.dumps(list(Webhook.objects.values().get().values()), default=str)
    assert secret not in stored
    assert secret[6:] not in stored
    page = story.client_for(story.owner).get(f"/w/{story.workspace.slug}/notifications/")
    assert secret not in page.content.decode()
    assert f"whsec_…{secret[-4:]}" in page.content.decode()


def test_members_cannot_add_webhooks_and_outsiders_see_nothing(story, loopback_allowed):
    url = f"/w/{story.workspace.slug}/notifications/"
    data = {"url": "http://127.0.0.1:9/hook", "format": "runway"}
    assert story.client_for(story.teammate).post(url, data).status_code == 403
    assert story.client_for(story.outsider).get(url).status_code == 404
    assert "New webhook" not in story.client_for(story.teammate).get(url).content.decode()
    hook, _ = actions.do_create_webhook(
        story.workspace, story.owner, url=data["url"], events=[], format="runway"
    )
    log = f"/w/{story.workspace.slug}/webhooks/{hook.pk}/"
    assert story.client_for(story.teammate).get(log).status_code == 403
    assert story.client_for(story.outsider).get(log).status_code == 404


def test_the_delivery_is_written_with_the_event_and_sent_only_after_commit(
    story, loopback_allowed, no_enqueue
):
    hook, _ = actions.do_create_webhook(
        story.workspace, story.owner, url="http://127.0.0.1:9/hook", events=[], format="runway"
    )
    with no_enqueue() as callbacks:
        notices.emit(notices.BUDGET_REACHED, workspace_id=story.workspace.pk, text="Budget")
        (event,) = Event.objects.all()
        assert Delivery.objects.get().event == event
        assert callbacks == []  # nothing leaves before the transaction commits
    assert len(callbacks) == 1
    assert Delivery.objects.get().webhook == hook


def test_a_signed_event_arrives_and_the_readme_snippet_verifies_it(story, eager, loopback_allowed):
    with receiver() as got:
        hook, secret = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        emit_awaiting_decision(story, eager)
        (request,) = got.acknowledged()
    body = json.loads(request.body)
    event = Event.objects.get(kind="run.awaiting_decision")
    assert body["id"] == event.event_id == request.headers["x-runway-delivery"]
    assert body["type"] == "run.awaiting_decision"
    assert body["card"]["title"] == "Checkout page"
    assert body["run"]["decision"] == "pending"
    assert {"accept", "reject", "card"} <= set(body["links"])
    verify = readme_verify()
    assert verify(secret, request.headers["x-runway-signature"], request.body)
    assert not verify(secret, request.headers["x-runway-signature"], request.body + b" ")
    assert not verify("whsec_wrong", request.headers["x-runway-signature"], request.body)
    old = signing.signature(secret, 1_000_000_000, request.body)
    assert not verify(secret, old, request.body)  # a replay from long ago
    assert Delivery.objects.get(webhook=hook).status == Delivery.Status.DELIVERED


def test_a_receiver_failing_three_times_acknowledges_each_event_once(
    story, eager, loopback_allowed
):
    with receiver(statuses=[500, 502, 503]) as got:
        hook, _ = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        emit_awaiting_decision(story, eager)
        # The drain stopped at the failure; the retries are its later drains (beat or countdown).
        while delivery.drain(hook.pk) is not None:
            pass
        acknowledged = got.acknowledged()
        tries = got.all()
    ids = [json.loads(r.body)["id"] for r in acknowledged]
    assert len(ids) == len(set(ids)) == Event.objects.count()
    assert [r.status for r in tries] == [500, 502, 503, 200]
    assert len({json.loads(r.body)["id"] for r in tries}) == 1  # the same event each time
    sent = Delivery.objects.get(webhook=hook)
    assert (sent.status, sent.attempts, sent.last_status_code) == ("delivered", 4, 200)
    page = story.client_for(story.owner).get(f"/w/{story.workspace.slug}/webhooks/{hook.pk}/")
    html = page.content.decode()
    for code in ("HTTP 500", "HTTP 502", "HTTP 503", "HTTP 200"):
        assert code in html
    assert "<span data-attempts>4</span>" in html


def test_a_refusing_receiver_fails_the_delivery_and_send_again_sends_it(
    story, eager, loopback_allowed
):
    with receiver(statuses=[400]) as got:
        hook, _ = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        emit_awaiting_decision(story, eager)
        failed = Delivery.objects.get(webhook=hook)
        assert (failed.status, failed.attempts) == ("failed", 1)
        with eager():
            response = story.client_for(story.owner).post(
                f"/w/{story.workspace.slug}/webhooks/{hook.pk}/deliveries/{failed.pk}/resend"
            )
        assert response.status_code == 302
        assert [r.status for r in got.all()] == [400, 200]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("delivered", 2)


def test_a_webhook_failing_for_a_day_is_paused_and_its_owner_told(
    story, eager, loopback_allowed, settings
):
    settings.RUNWAY_WEBHOOK_BACKOFF_SECONDS = 3600
    with receiver(then=503) as got:
        hook, _ = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        emit_awaiting_decision(story, eager)
        pending = Delivery.objects.get(webhook=hook)
        assert pending.status == "pending"
        Delivery.objects.filter(pk=pending.pk).update(
            first_failed_at=timezone.now() - timedelta(days=1, minutes=1),
            next_attempt_at=timezone.now(),
        )
        mail.outbox.clear()
        with eager():
            delivery.drain(hook.pk)
        assert len(got.all()) == 2
    hook.refresh_from_db()
    assert hook.paused_at is not None
    assert "HTTP 503" in hook.pause_reason
    (told,) = mail.outbox
    assert told.to == [story.owner.email]
    assert "paused" in told.subject
    assert delivery.drain(hook.pk) is None  # paused: nothing is sent
    page = story.client_for(story.owner).get(f"/w/{story.workspace.slug}/webhooks/{hook.pk}/")
    assert "Resume" in page.content.decode()


def test_the_slack_format_has_text_blocks_and_decision_buttons(story, eager, loopback_allowed):
    with receiver() as got:
        actions.do_create_webhook(
            story.workspace,
            story.owner,
            url=got.url,
            events=["run.awaiting_decision"],
            format="slack",
        )
        emit_awaiting_decision(story, eager)
        (request,) = got.acknowledged()
    body = json.loads(request.body)
    assert "Checkout page" in body["text"]
    assert body["blocks"][0]["type"] == "section"
    buttons = {b["action_id"]: b for b in body["blocks"][1]["elements"]}
    assert set(buttons) == {"accept", "reject"}
    assert "/decide/" in buttons["accept"]["url"]


def test_events_a_webhook_did_not_choose_are_not_sent(story, eager, loopback_allowed):
    with receiver() as got:
        hook, _ = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=["run.failed"], format="runway"
        )
        emit_awaiting_decision(story, eager)
        assert got.all() == []
    assert not Delivery.objects.filter(webhook=hook).exists()


def test_the_console_lists_webhooks_and_deliveries_without_the_salt(
    story, eager, loopback_allowed, admin_client
):
    with receiver() as got:
        hook, _ = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        emit_awaiting_decision(story, eager)
    for url in (
        "/admin/notifications/webhook/",
        f"/admin/notifications/webhook/{hook.pk}/change/",
        "/admin/notifications/delivery/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert hook.secret_salt not in page.content.decode()
    assert admin_client.get("/admin/notifications/webhook/add/").status_code == 403


def test_an_address_refused_at_send_time_fails_the_delivery_and_sends_nothing(
    story, eager, loopback_allowed, settings
):
    with receiver() as got:
        hook, _ = actions.do_create_webhook(
            story.workspace, story.owner, url=got.url, events=[], format="runway"
        )
        settings.RUNWAY_OUTBOUND_ALLOW = []  # the operator took loopback off the list since
        emit_awaiting_decision(story, eager)
        assert got.all() == []
    refused = Delivery.objects.get(webhook=hook)
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "loopback address" in refused.last_error
