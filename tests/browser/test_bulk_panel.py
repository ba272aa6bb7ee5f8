"""The Runs page's bulk panel in a real browser, desktop and phone: count the runs an outage
failed, confirm the retry with that count, watch the job's progress to the end."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from features.models import Feature, Workspace
from pipeline.models import BulkAction, Run
from tests.browser.conftest import SCREENSHOTS, Live, screenshot
from tests.bulk_helpers import outage, run_in

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_a_bulk_retry_is_counted_confirmed_and_watched(live: Live, page: Page) -> None:
    workspace = live.story.workspace
    Workspace.objects.filter(pk=workspace.pk).update(max_concurrent_runs=2)
    failed = outage(workspace, 12)
    run_in(workspace, "Unrelated", provider="openai", error_kind="permanent")
    Feature.objects.filter(runs__in=failed).update(description="Slow. [offline:delay=0.6]")

    live.login(page)
    page.goto(f"{live.url}/w/{workspace.slug}/runs/")
    panel = page.locator(".bulk-panel")
    panel.locator("select[name=provider]").select_option("anthropic")
    panel.locator("select[name=error_kind]").select_option("transient")
    panel.get_by_role("button", name="Count matching runs").click()

    preview = panel.locator(".bulk-preview")
    expect(preview).to_contain_text("12 runs to retry")
    expect(preview.locator(".bulk-sample tbody tr")).to_have_count(10)
    screenshot(page, "runs-bulk-preview")

    preview.get_by_role("button", name="Retry 12 runs").click()
    expect(page.locator(".toast", has_text="Bulk retry of 12 runs started")).to_be_visible()
    job = panel.locator(".bulk-job")
    expect(job.locator(".bulk-counts")).to_contain_text("12 of 12", timeout=30_000)
    expect(job.locator(".run-status")).to_have_text("Succeeded")
    assert BulkAction.objects.get().done == 12
    screenshot(page, "runs-bulk-job")

    # The retries themselves wait for the workspace's two slots.
    retries = Run.objects.filter(parent_run__in=failed)
    assert retries.count() == 12
    assert retries.filter(status=Run.Status.RUNNING).count() <= 2

    page.set_viewport_size(PHONE)
    page.reload()
    panel = page.locator(".bulk-panel")
    expect(panel.locator(".bulk-job").first).to_be_visible()
    panel.locator("select[name=action]").select_option("cancel")
    panel.get_by_role("button", name="Count matching runs").click()
    expect(panel.locator(".bulk-preview")).to_contain_text(
        re.compile(r"\d+ runs? to cancel|No runs")
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the Runs page scrolls sideways on a phone ({width}px)"
    # The page is long on a phone (every run is a card): the panel is what this shows.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "runs-bulk-phone.png"))
