"""The board websocket: members receive their workspace's events; nobody else connects.

Users are authenticated the way a browser is, with a session cookie, through the same
AuthMiddlewareStack as config.asgi; events go through the real Redis channel layer.
"""

from __future__ import annotations

from typing import Any

import pytest

from features.actions import do_create_feature
from features.events import publish, workspace_group
from features.models import Workspace
from tests.conftest import make_story
from tests.websocket_helpers import Session, websocket_session

pytestmark = pytest.mark.django_db(transaction=True)


def _event(feature_id: int) -> dict[str, Any]:
    return {"type": "cards.changed", "feature_ids": [feature_id], "stage_ids": []}


def _session(user, slug: str, *, then=None, expect: int = 0) -> Session:
    return websocket_session(user, f"/ws/workspaces/{slug}/", then=then, expect=expect)


def test_it_pushes_a_member_the_changed_card_as_html():
    story = make_story()
    card = do_create_feature(story.workspace, title="Checkout <b>now</b>", user=story.owner)
    group = workspace_group(story.workspace.pk)

    session = _session(
        story.teammate, story.workspace.slug, then=lambda: publish(group, _event(card.pk)), expect=1
    )

    assert session.connected is True
    (html,) = session.received
    assert html.startswith(f'<article class="card status-idle" id="card-{card.pk}"')
    assert "Checkout &lt;b&gt;now&lt;/b&gt;" in html
    assert ">Launch</button>" in html


def test_it_shows_a_viewer_the_card_without_actions():
    story = make_story()
    card = do_create_feature(story.workspace, title="Checkout", user=story.owner)
    group = workspace_group(story.workspace.pk)

    session = _session(
        story.viewer, story.workspace.slug, then=lambda: publish(group, _event(card.pk)), expect=1
    )

    (html,) = session.received
    assert f'id="card-{card.pk}"' in html
    assert "<button" not in html


def test_it_pushes_the_column_of_a_card_created_by_a_teammate_after_commit():
    story = make_story()
    created = []

    def create() -> None:
        created.append(do_create_feature(story.workspace, title="Checkout", user=story.owner))

    session = _session(story.teammate, story.workspace.slug, then=create, expect=1)

    (card,) = created
    (html,) = session.received
    assert html.startswith(f'<section class="column" id="column-{card.stage_id}"')
    assert f'id="card-{card.pk}"' in html
    assert '<span class="count" aria-label="1 cards">1</span>' in html


def test_it_sends_a_member_no_events_of_another_workspace():
    story = make_story()
    other = Workspace.objects.get(slug="charlies-team")

    session = _session(
        story.teammate,
        story.workspace.slug,
        then=lambda: publish(workspace_group(other.pk), _event(1)),
        expect=0,
    )

    assert session.connected is True
    assert session.received == []


def test_it_refuses_an_outsider():
    story = make_story()

    session = _session(story.outsider, story.workspace.slug)

    assert session.connected is False
    assert session.code == 4404


def test_it_refuses_an_anonymous_user():
    story = make_story()

    session = _session(None, story.workspace.slug)

    assert session.connected is False
    assert session.code == 4404


def test_it_refuses_a_workspace_that_does_not_exist():
    story = make_story()

    session = _session(story.owner, "no-such-workspace")

    assert session.connected is False
