"""The card page in a real browser: it follows the pipeline across stages and acts on it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from pipeline.models import Run
from tests.browser.conftest import Live, screenshot
from tests.engine_helpers import card
from tests.integration.processes import wait_until

pytestmark = pytest.mark.browser


def test_launch_follow_two_stages_stop_and_retry_from_the_card_page(live: Live, page: Page):
    feature = card(
        live.story.workspace, title="Saved carts", description="Keep carts. [offline:delay=1.5]"
    )
    live.login(page)
    page.goto(f"{live.url}/features/{feature.pk}/")
    panel = page.locator("#card-live")
    expect(panel.locator("[data-card-stage]")).to_have_text("Idea")
    page.evaluate("window.__sameDocument = true")

    panel.locator("button", has_text="Launch").click()
    expect(panel.locator("[data-step]")).to_have_text("step 1 of 2", timeout=15_000)
    expect(panel.locator("button", has_text="Launch")).to_be_disabled()
    expect(panel.locator("button", has_text="Stop")).to_be_enabled()
    expect(panel.locator(".processing")).to_be_visible(timeout=15_000)
    expect(panel.locator("[data-pipeline-elapsed]")).to_be_visible()
    first = Run.objects.filter(feature=feature).order_by("id").first()
    assert first is not None
    expect(page.locator("#log-panel")).to_have_attribute("data-run-id", str(first.pk))
    screenshot(page, "card-page")

    # The first stage passes: the page moves on to the second and follows its log.
    expect(panel.locator("[data-step]")).to_have_text("step 2 of 2", timeout=30_000)
    expect(panel.locator("[data-card-stage]")).to_have_text("Tasks")
    second = Run.objects.filter(feature=feature).order_by("id").last()
    assert second is not None
    assert second.pk != first.pk
    expect(page.locator("#log-panel")).to_have_attribute(
        "data-run-id", str(second.pk), timeout=10_000
    )
    expect(page.locator(f"#log-lines-{second.pk} .log-line").first).to_be_visible(timeout=15_000)

    seqs = page.locator(f"#log-lines-{second.pk} .log-line").evaluate_all(
        "lines => lines.map(line => line.dataset.seq)"
    )
    assert len(seqs) == len(set(seqs)), f"log lines shown twice: {seqs}"
    panel.locator("button", has_text="Stop").click()
    expect(panel.locator("button", has_text="Retry")).to_be_enabled(timeout=15_000)
    expect(panel.locator("button", has_text="Stop")).to_be_disabled()
    wait_until(
        lambda: Run.objects.get(pk=second.pk).status == Run.Status.CANCELLED,
        timeout=15,
        what="the run to be cancelled",
    )

    panel.locator("button", has_text="Retry").click()
    expect(panel.locator(".processing")).to_be_visible(timeout=15_000)
    expect(panel.locator("[data-card-stage]")).to_have_text("Done", timeout=45_000)
    expect(panel.locator("button", has_text="Retry")).to_be_disabled()
    statuses = list(
        Run.objects.filter(feature=feature).order_by("id").values_list("status", flat=True)
    )
    assert statuses == ["succeeded", "cancelled", "succeeded"]
    assert page.evaluate("window.__sameDocument") is True  # followed without a reload


def test_the_card_page_on_a_phone(live: Live, page: Page):
    feature = card(
        live.story.workspace,
        title="Mobile checkout",
        description="Pay on the go. [offline:delay=2]",
    )
    live.login(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/features/{feature.pk}/")
    page.locator("#card-live button", has_text="Launch").click()
    expect(page.locator("#card-live .processing")).to_be_visible(timeout=15_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the card page scrolls sideways on a phone ({width}px)"
    screenshot(page, "card-page-phone")
