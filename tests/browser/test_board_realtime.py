"""The board's socket in a real browser: it stays open while idle, and a drag is never lost."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, WebSocket, expect

from features.events import card_changed_on_commit
from features.models import Feature
from tests.browser.conftest import Live
from tests.engine_helpers import card, stage
from tests.integration.processes import wait_until

pytestmark = pytest.mark.browser

IDLE_SECONDS = 60


def test_an_idle_board_keeps_one_socket_open_for_a_minute(live: Live, page: Page):
    feature = card(live.story.workspace, title="Quiet card")
    live.login(page)  # lands on a board: its socket belongs to that page, not this one
    expect(page.locator("#live-status.on")).to_be_visible()
    opened: list[WebSocket] = []
    page.on("websocket", lambda socket: opened.append(socket))
    page.goto(live.board())
    expect(page.locator("#live-status.on")).to_be_visible()

    # The condition under test is time passing with nothing to do; the page is watched the
    # whole minute (any reconnect shows up as a second websocket).
    page.wait_for_timeout(IDLE_SECONDS * 1000)

    board_sockets = [s for s in opened if "/ws/workspaces/" in s.url]
    assert len(board_sockets) == 1, [s.url for s in board_sockets]
    assert not board_sockets[0].is_closed()
    expect(page.locator("#live-status.on")).to_be_visible()
    # ... and the socket still delivers.
    Feature.objects.filter(pk=feature.pk).update(title="Quiet card, renamed")
    from django.db import transaction

    with transaction.atomic():
        card_changed_on_commit(Feature.objects.get(pk=feature.pk))
    expect(page.locator(f"#card-{feature.pk} .title")).to_have_text("Quiet card, renamed")


def _drag(page: Page, source, target, *, midway=None) -> None:
    box, goal = source.bounding_box(), target.bounding_box()
    assert box is not None
    assert goal is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(goal["x"] + 20, goal["y"] + 20, steps=10)
    if midway is not None:
        midway()
    page.mouse.move(goal["x"] + 22, goal["y"] + 24, steps=5)
    page.mouse.up()


def test_a_card_is_dragged_by_its_title(live: Live, page: Page):
    feature = card(live.story.workspace, title="Grab me by the title")
    live.login(page)
    page.goto(live.board())
    done = page.locator(f"#column-{stage(live.story.workspace, 'done').pk}")

    _drag(page, page.locator(f"#card-{feature.pk} .title"), done.locator(".cards"))

    expect(done.locator(f"#card-{feature.pk}")).to_be_visible()
    wait_until(
        lambda: Feature.objects.get(pk=feature.pk).stage.key == "done",
        timeout=10,
        what="the move to reach the database",
    )
    assert page.url == live.board()  # the drop did not follow the title's link


def test_an_update_during_a_drag_waits_for_the_drop(live: Live, page: Page):
    feature = card(live.story.workspace, title="Being dragged")
    other = card(live.story.workspace, title="Changed meanwhile")
    live.login(page)
    page.goto(live.board())
    expect(page.locator("#live-status.on")).to_be_visible()
    page.evaluate(
        "window.__boardMessages = 0;"
        "document.addEventListener('htmx:wsBeforeMessage', () => window.__boardMessages++)"
    )
    done = page.locator(f"#column-{stage(live.story.workspace, 'done').pk}")
    idea_id = stage(live.story.workspace, "idea").pk

    def change_the_column_meanwhile() -> None:
        from django.db import transaction

        Feature.objects.filter(pk=other.pk).update(title="Changed while dragging")
        with transaction.atomic():
            changed = Feature.objects.get(pk=other.pk)
            card_changed_on_commit(changed, previous_stage_id=idea_id, created=True)
        # The event reaches the page during the drag and is held back: the card keeps its title.
        page.wait_for_function("() => window.__boardMessages > 0", timeout=5000)
        expect(page.locator(f"#card-{other.pk} .title")).to_have_text("Changed meanwhile")

    _drag(
        page,
        page.locator(f"#card-{feature.pk} .meta"),
        done.locator(".cards"),
        midway=change_the_column_meanwhile,
    )

    expect(done.locator(f"#card-{feature.pk}")).to_be_visible()
    wait_until(
        lambda: Feature.objects.get(pk=feature.pk).stage.key == "done",
        timeout=10,
        what="the move to reach the database",
    )
    # After the drop the held-back update is applied once.
    expect(page.locator(f"#card-{other.pk} .title")).to_have_text("Changed while dragging")
