"""GET /api/features: the caller's cards, filtered by workspace, stage, parent and kind."""

from __future__ import annotations

import pytest

from features.models import Feature
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import stage
from tests.factories import FeatureFactory

URL = "/api/features"


@pytest.fixture
def cards(story):
    epic = FeatureFactory.create(workspace=story.workspace, title="Epic", kind="epic")
    spec = FeatureFactory.create(workspace=story.workspace, title="Spec it")
    Feature.objects.filter(pk=spec.pk).update(stage=stage(story.workspace, "architecture"))
    task = FeatureFactory.create(
        workspace=story.workspace,
        title="Task",
        kind="task",
        parent=epic,
        stage=stage(story.workspace, "todo"),
    )
    return {"epic": epic, "spec": spec, "task": task}


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["title"] for item in response.json()["items"]]


def test_it_lists_the_owners_cards_in_board_order(story, cards):
    response = api_client(story.owner).get(URL)

    assert titles(response) == ["Epic", "Spec it", "Task"]
    assert response.json()["count"] == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?stage=architecture", ["Spec it"]),
        ("?kind=task", ["Task"]),
        ("?workspace=alices-team&kind=epic", ["Epic"]),
    ],
)
def test_it_filters(story, cards, query, expected):
    assert titles(api_client(story.teammate).get(URL + query)) == expected


def test_it_filters_by_parent(story, cards):
    assert titles(api_client(story.owner).get(f"{URL}?parent={cards['epic'].pk}")) == ["Task"]


def test_it_lets_a_viewer_read(story, cards):
    assert len(titles(api_client(story.viewer).get(URL))) == 3


def test_it_shows_an_outsider_none_of_the_workspace(story, cards):
    mine = FeatureFactory.create(workspace=story.outsider.memberships.get().workspace, title="Own")

    assert titles(api_client(story.outsider).get(URL)) == [mine.title]


def test_it_answers_404_when_an_outsider_names_the_workspace_or_a_parent(story, cards):
    client = api_client(story.outsider)

    assert error_of(client.get(f"{URL}?workspace=alices-team"))["code"] == "not_found"
    assert client.get(f"{URL}?parent={cards['epic'].pk}").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, cards):
    assert api_client().get(URL).status_code == 401


def test_it_pages(story, cards):
    response = api_client(story.owner).get(f"{URL}?limit=1&offset=1")

    assert titles(response) == ["Spec it"]
    assert response.json()["count"] == 3


def test_it_refuses_a_page_size_out_of_bounds(story):
    response = api_client(story.owner).get(f"{URL}?limit=501")

    assert response.status_code == 422
    assert error_of(response)["field"] == "limit"
