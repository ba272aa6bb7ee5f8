"""Approval email over real SMTP (aiosmtpd on loopback) and its one-click links: GET only
confirms, POST decides once as the person, and expired, reused or role-revoked links say why."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client

from audit.models import AuditEntry
from features.models import Membership
from notifications.links import decision_link
from notifications.models import EmailNotice, UsedLink
from pipeline.models import Run, RunLog
from skills.models import StageRecipe
from tests.engine_helpers import card, chain, stage
from tests.webhook_receiver import html_part, smtp_server, text_part


@pytest.fixture
def smtp(settings):
    with smtp_server() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
        yield server


def set_automation(workspace, key: str, level: str) -> None:
    StageRecipe.objects.filter(stage=stage(workspace, key)).update(automation=level)


def links_in(message) -> dict[str, str]:
    """{"Accept": path, ...} from the plain-text body, made relative to the site."""
    found = re.findall(r"^(Accept|Reject|Start): (\S+)$", text_part(message), re.M)
    base = django_settings.RUNWAY_BASE_URL
    return {label: url.removeprefix(base) for label, url in found}


def mail_for(server, user):
    return [m for m in server.inbox.all() if m["To"] == user.email]


def awaiting_decision(story, eager):
    set_automation(story.workspace, "architecture", StageRecipe.Automation.AUTO_NOTIFY)
    feature = card(story.workspace)
    with eager():
        from pipeline import engine

        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    return feature, run


def test_the_approval_email_arrives_with_links_that_accept_once_as_the_person(story, eager, smtp):
    feature, run = awaiting_decision(story, eager)
    (message,) = mail_for(smtp, story.teammate)
    assert "Checkout page" in message["Subject"]
    assert "Architecture" in text_part(message)
    links = links_in(message)
    assert set(links) == {"Accept", "Reject"}
    assert links["Accept"] in html_part(message).replace("&amp;", "&")
    assert not mail_for(smtp, story.viewer)  # viewers cannot decide: no email by default

    browser = Client()  # an email link works without a session: it names its person
    page = browser.get(links["Accept"])
    assert page.status_code == 200
    assert "Accept as bob" in page.content.decode()
    run.refresh_from_db()
    assert run.decision == Run.Decision.PENDING  # opening the link changed nothing

    with eager():
        done = browser.post(links["Accept"])
    assert done.status_code == 200
    assert "Accept recorded as bob" in done.content.decode()
    run.refresh_from_db()
    assert run.decision == Run.Decision.ACCEPTED
    assert RunLog.objects.filter(run=run, message="Result accepted by bob").exists()
    (entry,) = AuditEntry.objects.filter(action="run.decision")
    assert (entry.actor, entry.source, entry.workspace) == (
        story.teammate,
        "email",
        story.workspace,
    )
    assert entry.changes["decision"] == "accept"
    feature.refresh_from_db()
    assert feature.stage.key != "architecture"  # the chain went on

    again = browser.post(links["Accept"])
    assert again.status_code == 410
    assert "already used" in again.content.decode()
    assert UsedLink.objects.count() == 1


def test_the_reject_link_records_the_reason(story, eager, smtp):
    _, run = awaiting_decision(story, eager)
    links = links_in(mail_for(smtp, story.teammate)[0])
    response = Client().post(links["Reject"], {"reason": "Needs a rollback plan"})
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.decision == Run.Decision.REJECTED
    assert run.card_note == "Result rejected by bob: Needs a rollback plan"


def test_the_start_link_starts_the_waiting_stage_as_the_person(story, eager, smtp):
    set_automation(story.workspace, "tasks", StageRecipe.Automation.HUMAN_APPROVAL)
    feature = card(story.workspace)
    with eager():
        from pipeline import engine

        engine.launch_pipeline(feature, story.owner)
    waiting = chain(feature)[-1]
    assert waiting.status == Run.Status.AWAITING_APPROVAL
    (message,) = mail_for(smtp, story.teammate)
    links = links_in(message)
    assert set(links) == {"Start"}
    with eager():
        response = Client().post(links["Start"])
    assert response.status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == Run.Status.SUCCEEDED
    assert waiting.triggered_by == story.teammate
    assert RunLog.objects.filter(run=waiting, message="Started by bob").exists()


def test_an_expired_link_does_nothing_and_says_so(story, eager, smtp, monkeypatch, settings):
    _, run = awaiting_decision(story, eager)
    link = links_in(mail_for(smtp, story.teammate)[0])["Accept"]
    settings.RUNWAY_DECISION_LINK_MAX_AGE_SECONDS = 60

    class Later:
        @staticmethod
        def time() -> float:
            import time

            return time.time() + 61

    monkeypatch.setattr("django.core.signing.time", Later)
    for method in ("get", "post"):
        response = getattr(Client(), method)(link)
        assert response.status_code == 410
        assert "expired" in response.content.decode()
    run.refresh_from_db()
    assert run.decision == Run.Decision.PENDING
    assert not UsedLink.objects.exists()


def test_a_link_of_someone_whose_role_was_revoked_does_nothing(story, eager, smtp):
    _, run = awaiting_decision(story, eager)
    link = links_in(mail_for(smtp, story.teammate)[0])["Accept"]
    Membership.objects.filter(user=story.teammate, workspace=story.workspace).update(
        role=Membership.Role.VIEWER
    )
    response = Client().post(link)
    assert response.status_code == 403
    assert "viewers cannot decide" in response.content.decode()
    Membership.objects.filter(user=story.teammate, workspace=story.workspace).delete()
    response = Client().post(link)
    assert response.status_code == 403
    assert "no longer a member" in response.content.decode()
    run.refresh_from_db()
    assert run.decision == Run.Decision.PENDING
    assert not UsedLink.objects.exists()
    assert not AuditEntry.objects.filter(action="run.decision").exists()  # the launch is there


def test_a_link_altered_by_hand_does_nothing(story, eager, smtp):
    _, run = awaiting_decision(story, eager)
    link = links_in(mail_for(smtp, story.teammate)[0])["Accept"]
    response = Client().post(link[:-3] + "abc")
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    run.refresh_from_db()
    assert run.decision == Run.Decision.PENDING


def test_a_link_for_a_decision_already_taken_on_the_board_says_so(story, eager, smtp):
    _, run = awaiting_decision(story, eager)
    links = links_in(mail_for(smtp, story.teammate)[0])
    from pipeline import engine

    with eager():
        engine.reject_run(run, story.owner)
    response = Client().post(links["Accept"])
    assert response.status_code == 409
    assert "Someone may have decided already" in response.content.decode()
    run.refresh_from_db()
    assert run.decision == Run.Decision.REJECTED


def test_a_channel_link_asks_who_is_deciding_and_checks_their_role(story, eager, smtp):
    _, run = awaiting_decision(story, eager)
    link = decision_link(run.pk, "accept", None).removeprefix(django_settings.RUNWAY_BASE_URL)
    anonymous = Client().get(link)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert story.client_for(story.viewer).post(link).status_code == 403
    assert story.client_for(story.outsider).post(link).status_code == 403
    with eager():
        response = story.client_for(story.owner).post(link)
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.decision == Run.Decision.ACCEPTED
    assert RunLog.objects.filter(run=run, message="Result accepted by alice").exists()


def test_email_settings_off_sends_nothing(story, eager, smtp):
    response = story.client_for(story.teammate).post(
        f"/w/{story.workspace.slug}/notifications/email", {"mode": "off"}
    )
    assert response.status_code == 302
    awaiting_decision(story, eager)
    assert not mail_for(smtp, story.teammate)
    assert mail_for(smtp, story.owner)
    assert not EmailNotice.objects.filter(user=story.teammate).exists()
