"""The board that scales and reads well, in a real browser: search, filters kept in the URL,
the ⌘K palette, swimlanes, collapsed empty columns, no sideways page scroll, dark theme."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from features.actions import do_create_feature
from features.models import Feature
from pipeline.models import Run
from tests.browser.conftest import Live, screenshot
from tests.engine_helpers import card, stage

pytestmark = pytest.mark.browser


def _cards(live: Live) -> tuple[Feature, Feature]:
    workspace = live.story.workspace
    checkout = card(workspace, "Checkout page", description="Let shoppers pay with a saved card.")
    login = card(workspace, "Login form", description="Email and password.")
    for i, title in enumerate(["Build the form", "Validate the card number", "Write the tests"]):
        do_create_feature(
            workspace,
            title=title,
            user=None,
            kind=Feature.Kind.TASK,
            parent=checkout if i < 2 else login,
            stage=stage(workspace, "todo"),
        )
    return checkout, login


def _no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths}"


def test_search_filters_palette_lanes_and_columns(live: Live, page: Page):
    checkout, _ = _cards(live)
    page.set_viewport_size({"width": 1400, "height": 900})
    live.login(page)
    page.goto(live.board())
    expect(page.locator("#live-status.on")).to_be_visible()
    board = page.locator("#board-body")

    # Search by title, then by #id: the board narrows, the URL keeps it.
    page.fill("#board-filters input[name=q]", "Checkout")
    expect(board.locator('.card[data-title="Login form"]')).to_have_count(0)
    expect(board.locator(f"#card-{checkout.pk}")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=Checkout"))
    page.fill("#board-filters input[name=q]", f"#{checkout.pk}")
    expect(board.locator(".card")).to_have_count(1)
    expect(board.locator(f"#card-{checkout.pk}")).to_be_visible()
    page.fill("#board-filters input[name=q]", "")
    expect(board.locator('.card[data-title="Login form"]')).to_be_visible()

    # A filter survives a reload.
    page.select_option("#board-filters select[name=kind]", "task")
    expect(board.locator('.card[data-title="Login form"]')).to_have_count(0)
    expect(page).to_have_url(re.compile(r"kind=task"))
    page.reload()
    expect(page.locator("#board-filters select[name=kind]")).to_have_value("task")
    expect(board.locator(".card")).to_have_count(3)
    expect(board.locator('.card[data-title="Checkout page"]')).to_have_count(0)

    # Grouped by parent: one swimlane per parent, each naming it.
    page.check("#board-filters input[name=group]")
    lanes = page.locator("details.lane")
    expect(lanes).to_have_count(2)
    expect(lanes.first.locator("summary")).to_contain_text("Login form")
    expect(page.locator(f"#lane-{checkout.pk} .card")).to_have_count(2)
    page.locator(f"#lane-{checkout.pk} > summary").click()  # collapsible
    expect(page.locator(f"#lane-{checkout.pk} .card").first).to_be_hidden()
    screenshot(page, "board-lanes")

    # Back to the whole board: an empty column is a strip with its count, and opens.
    page.goto(live.board())
    done = page.locator(f"#column-{stage(live.story.workspace, 'done').pk}")
    expect(done).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(done.locator(".count")).to_have_text("0")
    strip = done.bounding_box()
    assert strip is not None
    assert strip["width"] < 60
    done.locator("[data-column-toggle]").click()
    expect(done).not_to_have_class(re.compile(r"\bcollapsed\b"))
    opened = done.bounding_box()
    assert opened is not None
    assert opened["width"] > 200
    expect(page.locator(".card", has_text="Build the form")).to_contain_text("Checkout page")
    _no_sideways_scroll(page)
    screenshot(page, "board-light")

    # ⌘K / Ctrl-K: find the card, pick it, launch it, all by keyboard.
    page.keyboard.press("Control+k")
    palette = page.locator("#palette")
    expect(palette).to_be_visible()
    page.keyboard.type("Login")
    expect(palette.locator("li[role=option]").first).to_contain_text("Login form")
    page.keyboard.press("Enter")
    expect(palette.locator("li[role=option]").first).to_have_text("Launch")
    page.keyboard.press("Enter")
    expect(palette).to_be_hidden()
    expect(page.locator(".toast", has_text="Launched")).to_be_visible()
    login = Feature.objects.get(title="Login form")
    assert Run.objects.filter(feature=login).exists()


def test_no_sideways_scroll_and_dark_theme_on_desktop_and_phone(live: Live, page: Page):
    _cards(live)
    live.login(page)
    for width, height, name in [(1400, 900, "board"), (390, 844, "board-phone")]:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live.board())
        expect(page.locator("#live-status.on")).to_be_visible()
        _no_sideways_scroll(page)
        if name == "board-phone":
            screenshot(page, "board-phone-light")
        page.emulate_media(color_scheme="dark")
        expect(page.locator("body")).to_have_css("background-color", "rgb(18, 21, 28)")
        _no_sideways_scroll(page)
        screenshot(page, f"{name}-dark")
        page.emulate_media(color_scheme="light")

    # The toggle overrides the system and is remembered.
    page.set_viewport_size({"width": 1400, "height": 900})
    page.click("[data-theme-toggle]")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("body")).to_have_css("background-color", "rgb(18, 21, 28)")

    # Every page shares the navigation; the card page too.
    checkout = Feature.objects.get(title="Checkout page")
    page.goto(f"{live.url}/features/{checkout.pk}/")
    expect(page.locator("nav.workspaces a", has_text="Runs & workers")).to_be_visible()
    _no_sideways_scroll(page)
    screenshot(page, "detail-dark")
    page.click("[data-theme-toggle]")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
