"""The server-rendered pages: login, home, board and card detail."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from features.actions import do_create_feature
from features.models import Feature
from pipeline.models import Run
from tests.factories import WorkspaceFactory

XSS = "<script>alert(1)</script>"


def _board_url(story) -> str:
    return reverse("features:board", args=[story.workspace.slug])


def _card(story, title: str, key: str = "idea", **kwargs) -> Feature:
    stage = story.workspace.stages.get(key=key)
    return do_create_feature(story.workspace, title=title, user=story.owner, stage=stage, **kwargs)


def test_it_renders_the_login_page(db):
    response = Client().get(reverse("login"))

    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


def test_it_logs_in_with_a_password(story):
    client = Client()

    response = client.post(reverse("login"), {"username": "alice", "password": "password"})

    assert response.status_code == 302
    assert client.get(_board_url(story)).status_code == 200


@pytest.mark.parametrize("page", ["home", "board", "detail"])
def test_it_sends_anonymous_users_to_login(story, page):
    card = _card(story, "Checkout")
    url = {
        "home": reverse("features:home"),
        "board": _board_url(story),
        "detail": reverse("features:detail", args=[card.pk]),
    }[page]

    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_lists_the_users_workspaces_on_home(story):
    WorkspaceFactory.create(name="Alice's side project", slug="side", owner=story.owner)

    response = story.client_for(story.owner).get(reverse("features:home"))

    assert response.status_code == 200
    assert b"Alice&#x27;s team" in response.content
    assert b"Alice&#x27;s side project" in response.content
    assert b"Charlie" not in response.content


def test_it_sends_a_user_with_one_workspace_straight_to_its_board(story):
    response = story.client_for(story.teammate).get(reverse("features:home"))

    assert response.status_code == 302
    assert response["Location"] == _board_url(story)


def test_it_renders_the_board_columns_with_counts_and_cards(story):
    _card(story, "Checkout")
    _card(story, "Saved carts")
    _card(story, "Guest checkout", "architecture")

    response = story.client_for(story.teammate).get(_board_url(story))

    assert response.status_code == 200
    columns = response.context["feature_columns"]
    assert [c.stage.key for c in columns] == ["idea", "architecture", "tasks", "done"]
    assert [c.count for c in columns] == [2, 1, 0, 0]
    assert [card.title for card in columns[0].cards] == ["Checkout", "Saved carts"]
    html = response.content.decode()
    idea, architecture, tasks = (c.stage.pk for c in columns[:3])
    count = r'<span class="count"[^>]*>{}</span>'
    assert re.search(
        rf'id="column-{idea}".*?{count.format(2)}.*?Checkout.*?Saved carts', html, re.DOTALL
    )
    assert re.search(
        rf'id="column-{architecture}".*?{count.format(1)}.*?Guest checkout', html, re.DOTALL
    )
    assert re.search(rf'id="column-{tasks}".*?{count.format(0)}', html, re.DOTALL)


def test_it_shows_the_board_to_a_viewer(story):
    _card(story, "Checkout")

    response = story.client_for(story.viewer).get(_board_url(story))

    assert response.status_code == 200
    assert b"Checkout" in response.content


def test_it_counts_children_on_the_card(story):
    parent = _card(story, "Checkout")
    for title in ("One", "Two"):
        do_create_feature(
            story.workspace, title=title, user=story.owner, kind=Feature.Kind.TASK, parent=parent
        )

    response = story.client_for(story.owner).get(_board_url(story))

    (card,) = response.context["feature_columns"][0].cards
    assert card.child_count == 2
    assert b"2 children" in response.content


def test_it_gives_an_outsider_404_on_the_board(story):
    response = story.client_for(story.outsider).get(_board_url(story))

    assert response.status_code == 404


def test_it_gives_an_outsider_404_on_a_feature(story):
    card = _card(story, "Secret plan")

    response = story.client_for(story.outsider).get(reverse("features:detail", args=[card.pk]))

    assert response.status_code == 404
    assert b"Secret plan" not in response.content


def test_it_renders_the_feature_detail_for_a_member(story):
    parent = _card(story, "Checkout")
    do_create_feature(
        story.workspace,
        title="Address form",
        user=story.owner,
        kind=Feature.Kind.TASK,
        parent=parent,
    )

    response = story.client_for(story.teammate).get(reverse("features:detail", args=[parent.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Checkout" in html
    assert "Address form" in html
    assert "by alice: Created" in html


def test_it_escapes_a_title_on_the_board(story):
    _card(story, XSS)

    response = story.client_for(story.owner).get(_board_url(story))

    assert response.status_code == 200
    assert XSS.encode() not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_it_escapes_a_title_and_description_on_the_detail_page(story):
    card = _card(story, XSS, description=f"Look: {XSS}")

    response = story.client_for(story.owner).get(reverse("features:detail", args=[card.pk]))

    assert response.status_code == 200
    assert XSS.encode() not in response.content
    assert response.content.count(b"&lt;script&gt;alert(1)&lt;/script&gt;") >= 3


def _fill(story, count: int, start: int) -> None:
    """Cards across the feature board, every other one with children, some with runs."""
    keys = ["idea", "architecture", "tasks", "done"]
    for i in range(start, start + count):
        card = _card(story, f"Card {i}", keys[i % len(keys)])
        if i % 2:
            do_create_feature(
                story.workspace,
                title=f"Task {i}",
                user=story.owner,
                kind=Feature.Kind.TASK,
                parent=card,
            )
            do_create_feature(
                story.workspace,
                title=f"Incident {i}",
                user=story.owner,
                kind=Feature.Kind.INCIDENT,
                parent=card,
            )
        if i % 3 == 0:
            Run.objects.create(
                workspace=story.workspace, feature=card, stage=card.stage, status=Run.Status.QUEUED
            )
        if i % 3 == 1:
            Run.objects.create(
                workspace=story.workspace,
                feature=card,
                stage=card.stage,
                status=Run.Status.SUCCEEDED,
            )


def _board_queries(client: Client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    cards = sum(column.count for column in response.context["feature_columns"])
    return len(queries), cards


def test_it_renders_the_board_in_a_constant_number_of_queries(story):
    client = story.client_for(story.teammate)
    url = _board_url(story)
    _fill(story, 5, start=0)
    small, small_cards = _board_queries(client, url)

    _fill(story, 55, start=5)
    large, large_cards = _board_queries(client, url)

    # Tasks go to the work board; incidents stay on the feature board next to their feature.
    assert (small_cards, large_cards) == (5 + 2, 60 + 30)
    assert large == small
    assert small <= 12


def test_it_keeps_board_queries_within_the_design_budget(story, django_assert_max_num_queries):
    _fill(story, 20, start=0)
    client = story.client_for(story.owner)

    with django_assert_max_num_queries(12):
        client.get(_board_url(story))
