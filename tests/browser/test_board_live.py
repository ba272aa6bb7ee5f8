"""The board in a real browser: it shows what the backend does, live, and never drives it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from features.actions import do_create_feature
from features.models import Feature, StageTransition
from pipeline import engine
from pipeline.models import Run
from tests.browser.conftest import Live, screenshot
from tests.engine_helpers import card, stage
from tests.integration.processes import wait_until

pytestmark = pytest.mark.browser


def column(page: Page, live: Live, key: str):
    return page.locator(f"#column-{stage(live.story.workspace, key).pk}")


def test_launching_from_the_dialog_moves_the_card_and_task_cards_appear(live: Live, page: Page):
    live.login(page)
    page.goto(live.board())
    expect(page.locator("#live-status.on")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    page.click("text=New feature")
    page.fill("#new-feature input[name=title]", "Checkout page")
    page.fill("#new-feature textarea[name=description]", "Let shoppers pay with a saved card.")
    page.click("#new-feature button[type=submit]")
    expect(page.locator("#new-feature")).not_to_be_visible()
    expect(page.locator(".toast", has_text="Generating feature in background…")).to_be_visible()

    cards = page.locator(".card", has_text="Checkout page")
    expect(page.locator(".card .processing").first).to_be_visible(timeout=15_000)
    expect(cards.locator(".progress-line")).to_contain_text("step")
    done = column(page, live, "done")
    expect(done.locator(".card", has_text="Checkout page")).to_be_visible(timeout=30_000)
    expect(page.locator(".toast", has_text="tasks added")).to_be_visible(timeout=10_000)

    feature = Feature.objects.get(title="Checkout page")
    tasks = feature.children.count()
    assert tasks >= 3
    expect(
        column(page, live, "todo").locator(".card.status-idle, .card.status-blocked")
    ).to_have_count(tasks)
    expect(done.locator(".count")).to_have_text("1")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    screenshot(page, "board")

    page.locator(f"#card-{feature.pk} .title").click()
    expect(page.locator("h1")).to_contain_text("Checkout page")
    expect(page.locator(".timeline > li")).to_have_count(2)
    expect(page.locator("#artifacts-heading + *")).to_be_visible()
    expect(page.get_by_text("architecture.md").first).to_be_visible()
    expect(page.locator(".child-list > li")).to_have_count(tasks)
    screenshot(page, "detail")


def test_closing_the_page_mid_pipeline_does_not_stop_it(live: Live, page: Page):
    feature = card(
        live.story.workspace, title="Saved carts", description="Keep carts. [offline:delay=1.5]"
    )
    live.login(page)
    page.goto(live.board())
    page.locator(f"#card-{feature.pk} button", has_text="Launch").click()
    expect(page.locator(f"#card-{feature.pk} .progress-line")).to_be_visible()
    page.close()

    wait_until(
        lambda: Run.objects.filter(feature=feature, status="succeeded").count() == 2,
        timeout=60,
        what="the pipeline to finish with the page closed",
    )
    again = page.context.new_page()
    again.goto(live.board())
    expect(column(again, live, "done").locator(f"#card-{feature.pk}")).to_be_visible()
    expect(again.locator(f"#card-{feature.pk} .children")).to_contain_text("children")


def test_drag_and_drop_moves_a_card_and_survives_a_reload(live: Live, page: Page):
    feature = card(live.story.workspace, title="Dark mode")
    live.login(page)
    page.goto(live.board())
    source = page.locator(f"#card-{feature.pk} .meta").bounding_box()
    target = column(page, live, "done").locator(".cards").bounding_box()
    assert source is not None
    assert target is not None
    # Step by step, as a hand moves a mouse: the drag library follows pointer moves.
    page.mouse.move(source["x"] + 10, source["y"] + 5)
    page.mouse.down()
    page.mouse.move(target["x"] + 20, target["y"] + 20, steps=15)
    page.mouse.up()
    expect(column(page, live, "done").locator(f"#card-{feature.pk}")).to_be_visible()
    wait_until(
        lambda: Feature.objects.get(pk=feature.pk).stage.key == "done",
        timeout=10,
        what="the move to reach the database",
    )
    page.reload()
    expect(column(page, live, "done").locator(f"#card-{feature.pk}")).to_be_visible()
    expect(column(page, live, "idea").locator(f"#card-{feature.pk}")).to_have_count(0)
    move = StageTransition.objects.filter(feature=feature).last()
    assert move is not None
    assert move.from_stage is not None
    assert (move.from_stage.key, move.to_stage.key, move.actor_user) == (
        "idea",
        "done",
        live.story.owner,
    )


def test_keyboard_users_move_a_card_with_its_menu(live: Live, page: Page):
    feature = card(live.story.workspace, title="Usage alerts")
    live.login(page)
    page.goto(live.board())
    page.locator(f"#card-{feature.pk} select[name=stage]").select_option(label="Done")
    expect(column(page, live, "done").locator(f"#card-{feature.pk}")).to_be_visible()
    assert Feature.objects.get(pk=feature.pk).stage.key == "done"


def test_a_failed_run_shows_its_error_and_retry_works(live: Live, page: Page):
    feature = card(live.story.workspace, title="Invoices", description="[offline:fail=permanent]")
    live.login(page)
    page.goto(live.board())
    page.locator(f"#card-{feature.pk} button", has_text="Launch").click()
    failed = page.locator(f"#card-{feature.pk}.status-failed")
    expect(failed).to_be_visible(timeout=20_000)
    expect(failed.locator(".note")).to_contain_text("offline provider was told to fail")
    expect(page.locator(".toast-error")).to_be_visible()

    Feature.objects.filter(pk=feature.pk).update(description="Fixed.")
    failed.locator("button", has_text="Retry").click()
    expect(column(page, live, "done").locator(f"#card-{feature.pk}")).to_be_visible(timeout=30_000)
    runs = list(Run.objects.filter(feature=feature).order_by("id"))
    assert [r.status for r in runs] == ["failed", "succeeded", "succeeded"]
    assert runs[1].parent_run_id == runs[0].pk


def test_the_board_and_a_card_on_a_phone(live: Live, page: Page):
    feature = card(live.story.workspace, title="Mobile checkout")
    live.login(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.board())
    expect(page.locator(f"#card-{feature.pk}")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the board scrolls sideways on a phone ({width}px)"
    screenshot(page, "board-phone")
    page.goto(f"{live.url}/features/{feature.pk}/")
    expect(page.locator("h1")).to_contain_text("Mobile checkout")
    screenshot(page, "detail-phone")


def test_an_off_screen_arrival_is_announced_only_when_it_moved(live: Live, page: Page):
    """On a phone the lower columns are off-screen: a card that moved into one gets a "moved
    to" toast with a Show link; a card made just now (a generated task, say) is not "moved"."""
    page.set_viewport_size({"width": 390, "height": 844})
    moved = card(live.story.workspace, "Saved cards")
    for n in range(4):  # push the Done column below the fold
        card(live.story.workspace, f"Idea {n}")
    live.login(page)
    page.goto(live.board())
    expect(page.locator("#live-status.on")).to_be_visible()

    engine.move_feature(
        moved, stage(live.story.workspace, "done"), user=None, start_automation=False
    )
    toast = page.locator(".toast", has_text="“Saved cards” moved to")
    expect(toast).to_be_visible(timeout=10_000)
    expect(toast.get_by_role("link", name="Show")).to_be_visible()

    made = do_create_feature(
        live.story.workspace, title="Address form", kind=Feature.Kind.TASK, user=None
    )
    expect(column(page, live, "todo").locator(f"#card-{made.pk}")).to_be_attached(timeout=10_000)
    expect(page.locator(".toast", has_text="“Address form”")).to_have_count(0)
