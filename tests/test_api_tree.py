"""GET /api/workspaces/{slug}/tree and /api/features/{id}/tree: the Stories page as JSON."""

from __future__ import annotations

from typing import Any

import pytest

from features.models import Feature
from pipeline import engine
from tests.api_helpers import api_client, error_of
from tests.conftest import Story
from tests.engine_helpers import card
from tests.tree_helpers import epic_with_stories, stories

pytestmark = pytest.mark.django_db


@pytest.fixture
def planned(product_story: Story, eager: Any) -> Feature:
    parent = epic_with_stories(product_story, eager)
    with eager():
        engine.generate_subtasks(parent, product_story.owner)
    return parent


def test_it_gives_every_epics_stories_subtasks_and_counts(
    product_story: Story, planned: Feature
) -> None:
    body = api_client(product_story.viewer).get("/api/workspaces/alices-team/tree").json()

    subtasks = Feature.objects.filter(parent__parent=planned, kind=Feature.Kind.TASK)
    assert body["counts"]["stories"] == 6
    assert body["counts"]["subtasks"] == subtasks.count()
    assert sum(body["counts"][s] for s in ("todo", "in_progress", "blocked", "failed", "done")) == (
        6 + subtasks.count()
    )
    (group,) = body["epics"]
    assert group["epic"]["id"] == planned.pk
    assert [s["id"] for s in group["stories"]] == [s.pk for s in stories(planned)]
    second = group["stories"][1]
    assert second["depends_on"] == [
        {"id": stories(planned)[0].pk, "title": stories(planned)[0].title}
    ]
    assert {t["id"] for t in second["subtasks"]} == set(
        stories(planned)[1].children.values_list("pk", flat=True)
    )
    assert group["batch"]["message"].endswith("subtasks added to 6 stories")


def test_it_filters_by_status_and_kind(product_story: Story, planned: Feature) -> None:
    client = api_client(product_story.owner)

    body = client.get("/api/workspaces/alices-team/tree?status=blocked&kind=story").json()

    listed = [s["id"] for g in body["epics"] for s in g["stories"]]
    blocked = [s.pk for s in stories(planned) if s.status == Feature.Status.BLOCKED]
    assert listed == blocked
    assert all(not s["subtasks"] for g in body["epics"] for s in g["stories"])
    assert body["filters"] == {"status": "blocked", "kind": "story"}
    bad = client.get("/api/workspaces/alices-team/tree?status=sideways")
    assert bad.status_code == 422
    assert error_of(bad)["field"] == "status"


def test_one_epics_tree(product_story: Story, planned: Feature) -> None:
    body = api_client(product_story.viewer).get(f"/api/features/{planned.pk}/tree").json()

    assert body["epic"]["id"] == planned.pk
    assert body["counts"]["stories"] == 6
    assert len(body["stories"]) == 6


def test_a_card_that_is_not_an_epic_or_not_yours_is_refused(
    product_story: Story, planned: Feature
) -> None:
    feature = card(product_story.workspace, "Dark mode")
    client = api_client(product_story.owner)

    not_epic = client.get(f"/api/features/{feature.pk}/tree")
    assert not_epic.status_code == 422
    assert error_of(not_epic)["code"] == "not_an_epic"
    outsider = api_client(product_story.outsider)
    assert outsider.get(f"/api/features/{planned.pk}/tree").status_code == 404
    assert outsider.get("/api/workspaces/alices-team/tree").status_code == 404
