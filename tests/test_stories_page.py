"""The workspace's Stories page: stories grouped by epic, KPI cards, filters, empty groups
collapsed; and the same section on an epic's card page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from features.models import Feature
from pipeline import engine
from tests.conftest import Story
from tests.tree_helpers import epic, epic_with_stories, stories

pytestmark = pytest.mark.django_db


def url(story: Story) -> str:
    return f"/w/{story.workspace.slug}/stories/"


def kpi(page: str, name: str) -> int:
    found = re.search(rf'data-kpi="{name}">(\d+)<', page)
    assert found is not None, name
    return int(found.group(1))


@pytest.fixture
def planned(product_story: Story, eager: Any) -> Feature:
    parent = epic_with_stories(product_story, eager)
    with eager():
        engine.generate_subtasks(parent, product_story.owner)
    return parent


def test_it_groups_stories_by_epic_with_kpi_cards(product_story: Story, planned: Feature) -> None:
    empty = epic(product_story.workspace, "Billing")

    page = product_story.client_for(product_story.viewer).get(url(product_story)).content.decode()

    subtasks = Feature.objects.filter(parent__parent=planned, kind=Feature.Kind.TASK).count()
    assert kpi(page, "stories") == 6
    assert kpi(page, "subtasks") == subtasks
    blocked = (
        Feature.objects.filter(parent__parent=planned, status=Feature.Status.BLOCKED).count()
        + Feature.objects.filter(parent=planned, status=Feature.Status.BLOCKED).count()
    )
    assert kpi(page, "blocked") == blocked
    # Stories that planned sit in Build, a delivery stage: in progress, or blocked by others.
    assert kpi(page, "in_progress") + kpi(page, "blocked") >= 6
    for user_story in stories(planned):
        assert f'id="story-{user_story.pk}"' in page
    # The epic with no stories is a collapsed group; the other is open.
    assert re.search(rf'id="epic-{empty.pk}"[^>]*>\s*<details class="group" >', page)
    assert re.search(rf'id="epic-{planned.pk}"[^>]*>\s*<details class="group" open>', page)
    assert "No stories yet: launch the epic" in page


def test_it_filters_by_status_and_kind(product_story: Story, planned: Feature) -> None:
    client = product_story.client_for(product_story.owner)

    blocked = client.get(url(product_story), {"status": "blocked", "kind": "story"}).content
    page = blocked.decode()

    for user_story in stories(planned):
        shown = f'id="story-{user_story.pk}"' in page
        assert shown == (user_story.status == Feature.Status.BLOCKED), user_story
    assert kpi(page, "stories") == 6  # the counts are of everything
    todo = client.get(url(product_story), {"status": "todo", "kind": "subtask"}).content.decode()
    assert 'class="subtask-peek" open' in todo


def test_an_unknown_filter_is_a_400_that_says_which(product_story: Story) -> None:
    response = product_story.client_for(product_story.owner).get(
        url(product_story), {"status": "sideways"}
    )

    assert response.status_code == 400
    assert b"Bad status filter" in response.content


def test_only_members_see_it(product_story: Story) -> None:
    assert (
        product_story.client_for(product_story.outsider).get(url(product_story)).status_code == 404
    )


def test_an_epics_card_page_has_its_tree_with_its_latest_batch(
    product_story: Story, planned: Feature
) -> None:
    page = product_story.client_for(product_story.viewer).get(f"/features/{planned.pk}/").content
    html = page.decode()

    assert f'id="epic-{planned.pk}"' in html
    assert "Generate subtasks for all stories" not in html  # viewers change nothing
    assert "subtasks added to 6 stories" in html  # the batch's result
    owner_page = product_story.client_for(product_story.owner).get(f"/features/{planned.pk}/")
    assert "Generate subtasks for all stories" in owner_page.content.decode()


def test_the_page_has_no_inline_script_or_style(product_story: Story, planned: Feature) -> None:
    page = product_story.client_for(product_story.owner).get(url(product_story)).content.decode()

    assert "<script>" not in page.replace("<script src=", "")
    assert " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
