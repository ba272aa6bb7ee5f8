"""The daily digest: a day's events in one email per person, over real SMTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from features import notices
from notifications import tasks
from notifications.actions import do_update_notification_setting
from notifications.models import EmailNotice, Event
from skills.models import StageRecipe
from tests.engine_helpers import card, stage
from tests.webhook_receiver import html_part, smtp_server, text_part


@pytest.fixture
def smtp(settings):
    with smtp_server() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
        yield server


def test_a_digest_collects_a_days_events_in_one_email(story, eager, smtp):
    do_update_notification_setting(
        story.teammate, story.workspace, mode="digest", events=list(notices.KINDS)
    )
    StageRecipe.objects.filter(stage=stage(story.workspace, "architecture")).update(
        automation=StageRecipe.Automation.AUTO_NOTIFY
    )
    with eager():
        from pipeline import engine

        engine.launch_pipeline(card(story.workspace, "Checkout page"), story.owner)
        engine.launch_pipeline(card(story.workspace, "Saved carts"), story.owner)
    notices.emit(notices.BUDGET_REACHED, workspace_id=story.workspace.pk, text="Budget reached")
    # Spread over the day: the digest takes everything since the last one, oldest first.
    now = timezone.now()
    for hours, event in zip((20, 9, 1), Event.objects.order_by("id"), strict=True):
        Event.objects.filter(pk=event.pk).update(created_at=now - timedelta(hours=hours))
    assert not [m for m in smtp.inbox.all() if m["To"] == story.teammate.email]

    assert tasks.send_digests.delay().get() == 1

    (digest,) = [m for m in smtp.inbox.all() if m["To"] == story.teammate.email]
    assert "3 events" in digest["Subject"]
    body = text_part(digest)
    positions = [body.index(t) for t in ("Checkout page", "Saved carts", "Budget reached")]
    assert positions == sorted(positions)
    assert body.count("Accept: http") == 2  # each waiting result with its own link
    assert "Saved carts" in html_part(digest)
    assert not EmailNotice.objects.filter(user=story.teammate, sent_at__isnull=True).exists()
    assert tasks.send_digests.delay().get() == 0  # nothing twice
