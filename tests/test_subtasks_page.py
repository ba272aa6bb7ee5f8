"""The Subtasks table: subtasks grouped by story, rows that expand to the description,
dependencies by title, status, stage and a link; filters; empty groups collapsed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from features.models import Feature
from pipeline import engine
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories, stories

pytestmark = pytest.mark.django_db


def url(story: Story) -> str:
    return f"/w/{story.workspace.slug}/subtasks/"


@pytest.fixture
def planned(product_story: Story, eager: Any) -> Feature:
    parent = epic_with_stories(product_story, eager)
    with eager():
        engine.generate_subtasks(parent, product_story.owner, story_ids=[stories(parent)[0].pk])
    return parent


def test_it_groups_subtasks_by_story_with_expandable_rows(
    product_story: Story, planned: Feature
) -> None:
    page = product_story.client_for(product_story.viewer).get(url(product_story)).content.decode()

    first = stories(planned)[0]
    subtasks = list(first.children.order_by("source_index"))
    assert len(subtasks) >= 3
    group = page[page.index(f'id="story-group-{first.pk}"') :]
    for subtask in subtasks:
        row = group[group.index(f'id="subtask-{subtask.pk}"') :]
        row = row[: row.index("</details>")]
        assert subtask.title in row
        assert subtask.description in row  # the expanded row: description…
        assert f'href="/features/{subtask.pk}/"' in row  # …and a link
        for dependency in subtask.dependencies.select_related("depends_on"):
            assert f">{dependency.depends_on.title}</a>" in row  # dependencies by title
    # Stories with no subtasks yet are collapsed groups that say how to get some.
    second = stories(planned)[1]
    assert re.search(rf'id="story-group-{second.pk}"[^>]*>\s*<details class="group" >', page)
    assert "No subtasks yet: generate them" in page


def test_it_filters_by_status_and_epic(product_story: Story, planned: Feature) -> None:
    client = product_story.client_for(product_story.owner)
    first = stories(planned)[0]
    blocked = first.children.filter(status=Feature.Status.BLOCKED)
    assert blocked.exists()

    page = client.get(url(product_story), {"status": "blocked", "epic": str(planned.pk)}).content
    html = page.decode()

    shown = set(map(int, re.findall(r'id="subtask-(\d+)"', html)))
    assert shown == set(blocked.values_list("pk", flat=True))
    assert client.get(url(product_story), {"epic": "x"}).status_code == 400
