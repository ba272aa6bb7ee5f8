"""The Stories page and the Subtasks table in a real browser, on desktop and phone widths:
generate subtasks for all stories, watch the batch's progress, read the subtasks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from playwright.sync_api import Page, ViewportSize, expect

from features.models import Feature
from pipeline import engine
from pipeline.models import Batch, Run
from tests.browser.conftest import Live, screenshot
from tests.conftest import make_story
from tests.integration.processes import Stack, wait_until
from tests.tree_helpers import epic, stories

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def live_product(transactional_db: None) -> Iterator[Live]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.close()
    story = make_story("product")
    stack = Stack({"RUNWAY_OFFLINE_DELAY_SECONDS": "0.3"})
    url = stack.start_web(wait=False)  # daphne boots while the worker does
    stack.start_beat()
    stack.start_worker(concurrency=2)
    stack.wait_for_web()
    yield Live(url, stack, story)
    stack.stop()


def planned_epic(live: Live) -> Feature:
    """An epic whose pipeline wrote six stories; each story's own step then takes a while, so
    the batch's progress can be watched."""
    parent = epic(live.story.workspace, at="tickets")
    engine.launch_pipeline(parent, live.story.owner)
    wait_until(
        lambda: (
            len(stories(parent)) == 6
            and not Run.objects.filter(feature=parent, status__in=Run.ACTIVE_STATUSES).exists()
        ),
        timeout=60,
        what="the epic's stories",
    )
    for user_story in stories(parent):
        Feature.objects.filter(pk=user_story.pk).update(
            description=f"{user_story.description} [offline:delay=1.2]"
        )
    return parent


def test_generating_subtasks_for_all_stories_shows_live_progress_and_a_final_toast(
    live_product: Live, page: Page
) -> None:
    live = live_product
    parent = planned_epic(live)
    live.login(page)
    page.goto(f"{live.url}/w/{live.story.workspace.slug}/stories/")
    group = page.locator(f"#epic-{parent.pk}")
    expect(group.locator(".story-row")).to_have_count(6)
    expect(page.locator('[data-kpi="stories"]')).to_have_text("6")

    group.get_by_role("button", name="Generate subtasks for all stories").click()

    batch = page.locator(".batch")
    expect(batch).to_be_visible()
    expect(page.locator(".toast", has_text="Generating subtasks for 6 stories")).to_be_visible()
    processing = batch.locator(".processing-now li")
    expect(processing.first).to_be_visible(timeout=20_000)
    expect(batch.locator(".processing").first).to_be_visible()  # the pulsing marker
    expect(batch.locator("time.elapsed")).to_have_text(re.compile(r"^0:0[1-9]|^\d+:[1-5]\d$"))
    expect(batch.locator("rect.active")).to_have_attribute("width", re.compile(r"^[1-9]\d*$"))
    screenshot(page, "stories-progress")

    toast = page.locator(".toast", has_text="subtasks added to 6 stories")
    expect(toast).to_be_visible(timeout=60_000)
    expect(batch.locator(".batch-count")).to_have_text("6 of 6 done")
    done = Batch.objects.get()
    assert done.finished_at is not None
    expect(batch.locator(".batch-result")).to_have_text(engine.trees.final_message(done))
    # The tree was redrawn: every story now counts its subtasks.
    expect(group.locator(".sub-count", has_text="no subtasks yet")).to_have_count(0)
    subtasks = Feature.objects.filter(parent__parent=parent, kind=Feature.Kind.TASK).count()
    expect(page.locator('[data-kpi="subtasks"]')).to_have_text(str(subtasks))
    screenshot(page, "stories")

    page.goto(f"{live.url}/features/{parent.pk}/")  # the epic's own page has the same section
    expect(page.locator(f"#epic-{parent.pk} .batch-result")).to_have_text(
        engine.trees.final_message(done)
    )
    expect(page.locator(f"#epic-{parent.pk} .story-row")).to_have_count(6)

    page.goto(f"{live.url}/w/{live.story.workspace.slug}/stories/")
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator(".story-row").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the Stories page scrolls sideways on a phone ({width}px)"
    screenshot(page, "stories-phone")


def test_the_subtasks_table_groups_by_story_and_rows_expand(live_product: Live, page: Page) -> None:
    live = live_product
    parent = planned_epic(live)
    first, second = stories(parent)[:2]
    Feature.objects.filter(pk__in=[first.pk, second.pk]).update(description="Quick.")
    started = engine.generate_subtasks(parent, live.story.owner, story_ids=[first.pk, second.pk])
    wait_until(
        lambda: Batch.objects.filter(pk=started.batch.pk, finished_at__isnull=False).exists(),
        timeout=60,
        what="the batch to finish",
    )
    live.login(page)
    page.goto(f"{live.url}/w/{live.story.workspace.slug}/subtasks/")

    group = page.locator(f"#story-group-{second.pk}")
    subtask = second.children.order_by("source_index")[1]
    row = group.locator(f"#subtask-{subtask.pk}")
    expect(row.locator(".st-detail")).to_be_hidden()
    row.locator("summary").click()
    expect(row.locator(".st-detail")).to_be_visible()
    expect(row.locator(".st-detail")).to_contain_text(subtask.description)
    dependency = subtask.dependencies.get().depends_on
    expect(row.locator(".st-detail dd a", has_text=dependency.title)).to_be_visible()
    # Stories with no subtasks yet are collapsed.
    third = stories(parent)[2]
    expect(page.locator(f"#story-group-{third.pk} > details")).not_to_have_attribute("open", "")
    screenshot(page, "subtasks")

    page.set_viewport_size(PHONE)
    page.reload()
    row = page.locator(f"#subtask-{subtask.pk}")
    row.locator("summary").click()
    expect(row.locator(".st-detail")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the Subtasks table scrolls sideways on a phone ({width}px)"
    screenshot(page, "subtasks-phone")

    page.select_option("select[name=status]", "blocked")
    expect(page).to_have_url(re.compile(r"status=blocked"))
    blocked = Feature.objects.filter(
        parent__in=[first, second], status=Feature.Status.BLOCKED
    ).count()
    expect(page.locator(".st-row")).to_have_count(blocked)
