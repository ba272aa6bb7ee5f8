"""The notifications pages in Chromium at desktop and phone width: the settings page with a
new webhook's secret, the deliveries log with a retried delivery, and the decision page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from features import notices
from notifications import delivery
from notifications.links import decision_link
from notifications.models import Webhook
from pipeline import engine
from skills.models import StageRecipe
from tests.browser.conftest import Live, screenshot
from tests.engine_helpers import card, chain, stage
from tests.integration.processes import wait_until
from tests.webhook_receiver import receiver

pytestmark = pytest.mark.browser
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture
def live_on_loopback(transactional_db, monkeypatch, request, settings) -> Live:
    """The live stack with the operator's allow-list naming loopback, where the receiver is
    (set before its processes start, so the web server refuses nothing the test sends)."""
    monkeypatch.setenv("RUNWAY_OUTBOUND_ALLOW", "127.0.0.1")
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1"]
    settings.RUNWAY_WEBHOOK_BACKOFF_SECONDS = 0
    return request.getfixturevalue("live")


def test_webhook_settings_deliveries_and_decision_pages(
    live_on_loopback: Live, page: Page, settings
):
    live = live_on_loopback
    workspace = live.story.workspace
    with receiver(statuses=[503]) as got:
        page.set_viewport_size(DESKTOP)
        live.login(page)
        page.goto(f"{live.url}/w/{workspace.slug}/notifications/")
        page.fill("input[name=url]", got.url)
        page.check("#new-webhook input[name=events][value='run.awaiting_decision']")
        page.check("#new-webhook input[name=events][value='pipeline.finished']")
        page.click("#new-webhook button")
        expect(page.locator("#new-secret code")).to_contain_text("whsec_")
        assert Webhook.objects.get().events == ["run.awaiting_decision", "pipeline.finished"]
        screenshot(page, "notifications-settings-desktop")
        page.set_viewport_size(PHONE)
        screenshot(page, "notifications-settings-phone")

        StageRecipe.objects.filter(stage=stage(workspace, "architecture")).update(
            automation=StageRecipe.Automation.AUTO_NOTIFY
        )
        feature = card(workspace)
        engine.launch_pipeline(feature, live.story.owner)
        wait_until(
            lambda: chain(feature)[0].decision == "pending", timeout=60, what="a pending result"
        )
        hook = Webhook.objects.get()
        notices.emit(notices.PIPELINE_FINISHED, workspace_id=workspace.pk, text="Demo finished")
        wait_until(lambda: delivery.drain(hook.pk) is None, timeout=30, what="deliveries sent")
        assert len(got.acknowledged()) == 2

    page.set_viewport_size(DESKTOP)
    page.goto(f"{live.url}/w/{workspace.slug}/webhooks/{hook.pk}/")
    page.locator("details summary").last.click()  # the oldest delivery: retried once
    expect(page.locator("details[open] ol.attempts li").first).to_contain_text("HTTP 503")
    screenshot(page, "webhook-deliveries-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "webhook-deliveries-phone")

    link = decision_link(chain(feature)[0].pk, "reject", live.story.teammate.pk)
    page.goto(live.url + link.removeprefix(settings.RUNWAY_BASE_URL))
    expect(page.locator("#confirm button")).to_contain_text("Reject as bob")
    screenshot(page, "decision-confirm-phone")
    page.set_viewport_size(DESKTOP)
    screenshot(page, "decision-confirm-desktop")
    # The real form post (CSRF cookie and token from the confirmation page) decides once.
    page.fill("textarea[name=reason]", "Needs a rollback plan")
    page.click("#confirm button")
    expect(page.locator("#done")).to_contain_text("Reject recorded as bob")
    run = chain(feature)[0]
    assert run.decision == "rejected"
    assert run.card_note == "Result rejected by bob: Needs a rollback plan"
    page.reload()  # the browser posts the form again: the link refuses, the decision stands
    expect(page.locator("#problem")).to_contain_text("already used")
