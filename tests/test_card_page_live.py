"""The card page's live panel and its socket: what the pipeline is doing, the actions that
apply now, and a page that follows the card without a reload."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from features.events import publish, wait_sent, workspace_group
from features.models import Dependency
from pipeline.models import Run
from tests.engine_helpers import card
from tests.websocket_helpers import application, cookie_for


def _panel(html: str) -> str:
    start = html.index('id="card-live"')
    return html[start : html.index("</section>", start)]


def _button(panel: str, label: str) -> str:
    end = panel.index(f">{label}</button>")
    return panel[panel.rindex("<button", 0, end) : end]


def test_a_blocked_cards_launch_is_disabled_and_names_its_blockers(story):
    feature = card(story.workspace, title="Checkout")
    blocker = card(story.workspace, title="Payments <API>")
    Dependency.objects.create(feature=feature, depends_on=blocker)

    html = story.client_for(story.teammate).get(f"/features/{feature.pk}/").content.decode()

    launch = _button(_panel(html), "Launch")
    assert "disabled" in launch
    assert 'title="Waits for: Payments &lt;API&gt;"' in launch
    assert "Launch waits for: <strong>Payments &lt;API&gt;</strong>" in html


def test_an_idle_card_offers_launch_and_nothing_that_does_not_apply(story):
    feature = card(story.workspace, title="Checkout")

    panel = _panel(
        story.client_for(story.teammate).get(f"/features/{feature.pk}/").content.decode()
    )

    assert "disabled" not in _button(panel, "Launch")
    for label in ("Stop", "Retry", "Start", "Accept", "Reject"):
        assert "disabled" in _button(panel, label), label
    assert f'hx-post="/features/{feature.pk}/move"' in panel


def test_a_viewer_sees_the_panel_without_actions(story):
    feature = card(story.workspace, title="Checkout")

    panel = _panel(story.client_for(story.viewer).get(f"/features/{feature.pk}/").content.decode())

    assert "<button" not in panel


def test_launching_from_the_card_page_answers_with_the_panel_in_progress(story, no_enqueue):
    feature = card(story.workspace, title="Checkout")
    client = story.client_for(story.teammate)

    with no_enqueue():
        response = client.post(
            f"/features/{feature.pk}/launch",
            headers={"HX-Request": "true", "HX-Target": "card-live"},
        )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="panel card-live" id="card-live"')
    assert "step 1 of 2" in html
    assert "disabled" in _button(html, "Launch")
    assert "disabled" not in _button(html, "Stop")


@pytest.mark.django_db(transaction=True)
def test_the_card_socket_sends_the_panel_and_the_next_runs_log(story):
    feature = card(story.workspace, title="Checkout")
    other = card(story.workspace, title="Other")
    headers = cookie_for(story.teammate)

    def start_run() -> Run:
        return Run.objects.create(
            feature=feature, workspace=story.workspace, stage=feature.stage, status="running"
        )

    def changed(*ids: int) -> None:
        event: dict[str, Any] = {"type": "cards.changed", "feature_ids": list(ids)}
        publish(workspace_group(story.workspace.pk), event)

    # The cards' own creation events leave asynchronously: none may reach the socket.
    assert wait_sent(timeout=10)

    async def scenario() -> tuple[str, bool, int]:
        socket = WebsocketCommunicator(application, f"/ws/features/{feature.pk}/?run=", headers)
        connected, _ = await socket.connect()
        assert connected
        await sync_to_async(changed)(other.pk)  # another card's change: nothing to send
        quiet = await socket.receive_nothing(timeout=0.5)
        run = await sync_to_async(start_run)()
        await sync_to_async(changed)(feature.pk)
        html = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return html, quiet, run.pk

    html, quiet, run_id = async_to_sync(scenario)()

    assert quiet
    assert 'id="card-live" aria-labelledby="card-live-heading" hx-swap-oob="true"' in html
    assert "Processing" in html
    assert f'<div id="log-panel" data-run-id="{run_id}" hx-swap-oob="true">' in html
    assert f'ws-connect="/ws/runs/{run_id}/?after=0"' in html


@pytest.mark.django_db(transaction=True)
def test_the_card_socket_refuses_an_outsider(story):
    feature = card(story.workspace, title="Checkout")
    headers = cookie_for(story.outsider)

    async def scenario() -> tuple[bool, Any]:
        socket = WebsocketCommunicator(application, f"/ws/features/{feature.pk}/", headers)
        return await socket.connect()

    assert async_to_sync(scenario)() == (False, 4404)
