"""Linked work: incidents → feature, stories → epic, subtasks → story, enhancements → feature.

From the CLI (create --parent, show --children, list --parent) and on the card page's tree.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from features.models import Feature, Stage
from tests.cli_helpers import pipeline, pipeline_json
from tests.conftest import Story

pytestmark = pytest.mark.django_db


def create(title: str, *args: str) -> Feature:
    return Feature.objects.get(pk=int(pipeline("create", title, *args)))


def test_it_links_an_incident_to_its_feature(delivery_story: Story) -> None:
    feature = create("Invoice extractor")

    incident = create("Fix timeout in extractor", "--kind", "incident", "--parent", str(feature.pk))

    assert (incident.kind, incident.parent, incident.workspace) == (
        "incident",
        feature,
        delivery_story.workspace,
    )
    assert incident.stage.board == Stage.Board.FEATURE


def test_it_links_stories_to_an_epic_and_subtasks_to_a_story(story: Story) -> None:
    epic = create("Payments", "--kind", "epic")

    user_story = create("Pay by card", "--kind", "story", "--parent", str(epic.pk))
    subtask = create("Validate the card number", "--kind", "task", "--parent", str(user_story.pk))

    assert (user_story.parent, user_story.stage.key) == (epic, "idea")  # its pipeline runs there
    assert (subtask.parent, subtask.kind, subtask.stage.key) == (user_story, "task", "todo")


def test_it_links_an_enhancement_to_the_original_feature(story: Story) -> None:
    original = create("Checkout page")

    enhancement = create("Checkout page: saved cards", "--parent", str(original.pk))

    assert (enhancement.kind, enhancement.parent) == ("feature", original)


def test_it_shows_a_card_with_its_children(story: Story) -> None:
    feature = create("Invoice extractor")
    incident = create("Timeout", "--kind", "incident", "--parent", str(feature.pk))
    enhancement = create("Extract totals", "--parent", str(feature.pk))

    out = pipeline("show", str(feature.pk), "--children")
    data = pipeline_json("show", str(feature.pk), "--children")

    assert f"  └ #{incident.pk} [incident] Timeout (idea)" in out
    assert f"  └ #{enhancement.pk} [feature] Extract totals (idea)" in out
    assert [(c["id"], c["kind"], c["stage"], c["status"]) for c in data["children"]] == [
        (incident.pk, "incident", "idea", "idle"),
        (enhancement.pk, "feature", "idea", "idle"),
    ]


def test_it_shows_a_childs_parent(story: Story) -> None:
    epic = create("Payments", "--kind", "epic")
    user_story = create("Pay by card", "--kind", "story", "--parent", str(epic.pk))

    assert f"parent #{epic.pk}" in pipeline("show", str(user_story.pk))
    assert pipeline_json("show", str(user_story.pk))["parent"] == epic.pk


def test_it_lists_the_cards_of_a_parent_by_kind(story: Story) -> None:
    epic = create("Payments", "--kind", "epic")
    first = create("Pay by card", "--kind", "story", "--parent", str(epic.pk))
    second = create("Refunds", "--kind", "story", "--parent", str(epic.pk))
    create("Unrelated", "--kind", "story")
    create("Validate", "--kind", "task", "--parent", str(first.pk))

    rows = pipeline_json("list", "--parent", str(epic.pk))
    stories = pipeline_json("list", "--parent", str(epic.pk), "--kind", "story")
    tasks = pipeline_json("list", "--parent", str(first.pk), "--kind", "task")

    assert sorted(r["id"] for r in rows) == [first.pk, second.pk]
    assert sorted(r["id"] for r in stories) == [first.pk, second.pk]
    assert [r["title"] for r in tasks] == ["Validate"]
    assert "No cards." in pipeline("list", "--parent", str(second.pk))


def test_it_keeps_the_children_when_the_parent_is_deleted(story: Story) -> None:
    feature = create("Invoice extractor")
    incident = create("Timeout", "--kind", "incident", "--parent", str(feature.pk))

    feature.delete()

    incident.refresh_from_db()
    assert incident.parent_id is None


def test_it_shows_the_tree_on_the_card_page(story: Story) -> None:
    epic = create("Payments", "--kind", "epic")
    user_story = create("Pay by card", "--kind", "story", "--parent", str(epic.pk))
    subtask = create("Validate the number", "--kind", "task", "--parent", str(user_story.pk))
    deeper = create("Luhn check", "--kind", "task", "--parent", str(subtask.pk))

    response = story.client_for(story.viewer).get(reverse("features:detail", args=[epic.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    section = html[html.index('id="children-heading"') : html.index('id="history-heading"')]
    child_at = section.index(f'href="/features/{user_story.pk}/"')
    grandchild_at = section.index(f'href="/features/{subtask.pk}/"')
    assert child_at < grandchild_at
    assert "Validate the number" in section
    assert '<span class="badge kind-task">Task</span>' in section
    assert "To do · Idle" in section
    assert "Luhn check" not in section  # two levels: children and grandchildren
    assert deeper.parent == subtask


def test_it_reads_the_tree_in_a_constant_number_of_queries(
    story: Story, django_assert_max_num_queries: Any
) -> None:
    from pipeline.card_queries import card_tree

    epic = create("Payments", "--kind", "epic")
    for n in range(4):
        child = create(f"Story {n}", "--kind", "story", "--parent", str(epic.pk))
        create(f"Task {n}", "--kind", "task", "--parent", str(child.pk))

    with django_assert_max_num_queries(2):
        tree = card_tree(epic)
        titles = [[g.title for g in c.grandchildren] for c in tree]  # type: ignore[attr-defined]

    assert titles == [["Task 0"], ["Task 1"], ["Task 2"], ["Task 3"]]
