"""`manage.py pipeline subtasks|tree|stories|batch` and `launch --tree`: the Stories page from a
shell. Launches enqueue after commit; those calls run under `no_enqueue` or `eager`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management.base import CommandError

from features.models import Feature
from pipeline.models import Batch, Run
from tests.cli_helpers import pipeline
from tests.conftest import Story
from tests.engine_helpers import card
from tests.tree_helpers import epic_with_stories, stories

pytestmark = pytest.mark.django_db


@pytest.fixture
def parent(product_story: Story, eager: Any) -> Feature:
    return epic_with_stories(product_story, eager)


def test_it_generates_subtasks_for_all_stories(
    product_story: Story, parent: Feature, eager: Any
) -> None:
    with eager():
        out = pipeline("--as", "bob", "subtasks", str(parent.pk))

    batch = Batch.objects.get()
    assert out == f"Generating subtasks: batch #{batch.pk}, 6 cards\n"
    assert batch.created_by == product_story.teammate
    assert all(s.children.exists() for s in stories(parent))
    shown = pipeline("batch", str(batch.pk))
    assert shown.splitlines()[0].startswith(f"Batch #{batch.pk} (subtasks): 6 of 6 done · took ")
    assert shown.splitlines()[0].endswith("subtasks added to 6 stories")


def test_it_generates_for_the_stories_named(parent: Feature, no_enqueue: Any) -> None:
    chosen = stories(parent)[:2]

    with no_enqueue():
        data = json.loads(
            pipeline("subtasks", str(parent.pk), *[f"--story={s.pk}" for s in chosen], "--json")
        )

    assert sorted(Run.objects.filter(pk__in=data["runs"]).values_list("feature_id", flat=True)) == (
        sorted(s.pk for s in chosen)
    )


def test_it_shows_an_epics_tree_with_counts(parent: Feature, eager: Any) -> None:
    with eager():
        pipeline("subtasks", str(parent.pk))

    out = pipeline("tree", str(parent.pk))

    lines = out.splitlines()
    assert lines[0] == f"#{parent.pk} {parent.title} (epic · Build)"
    assert lines[1].startswith("  6 stories · ")
    first = stories(parent)[0]
    assert f"  └ #{first.pk} {first.title} [" in out
    subtask = first.children.order_by("source_index").first()
    assert subtask is not None
    assert f"      └ #{subtask.pk} {subtask.title} [" in out
    data = json.loads(pipeline("tree", str(parent.pk), "--json"))
    assert data["counts"]["stories"] == 6
    assert len(data["stories"]) == 6


def test_it_lists_the_workspaces_stories_filtered(product_story: Story, parent: Feature) -> None:
    out = pipeline("stories", "--workspace", "alices-team", "--kind", "story")

    assert (
        out.splitlines()[0]
        == "Alice's team: 6 stories · 0 subtasks · 0 done · 0 in progress · 5 blocked · 0 failed"
    )
    data = json.loads(
        pipeline("stories", "--workspace", "alices-team", "--status", "done", "--json")
    )
    assert data["epics"][0]["stories"] == []


def test_it_launches_a_whole_tree_then_stops_and_retries_it(
    parent: Feature, no_enqueue: Any
) -> None:
    with no_enqueue():
        out = pipeline("launch", str(parent.pk), "--tree")
        batch = Batch.objects.get(kind=Batch.Kind.TREE)
        assert out.startswith(f"Launched the whole tree: batch #{batch.pk}, 6 cards")
        assert pipeline("batch", str(batch.pk), "--stop") == "Stopped 6 run(s).\n"
        retried = json.loads(pipeline("batch", str(batch.pk), "--retry", "--json"))

    assert len(retried["runs"]) == 6
    waiting = Run.objects.filter(batch=batch, status=Run.Status.WAITING).count()
    assert waiting == 5


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("tree", "{card}"), "is a feature, not an epic"),
        (("subtasks", "{card}"), "starts from an epic"),
        (("batch", "999999"), "No batch #999999."),
        (("subtasks", "{epic}", "--story", "{card}"), "Not stories of"),
    ],
)
def test_mistakes_are_one_line_errors(
    product_story: Story, parent: Feature, args: tuple[str, ...], says: str
) -> None:
    other = card(product_story.workspace, "Dark mode")
    filled = [a.format(card=other.pk, epic=parent.pk) for a in args]

    with pytest.raises(CommandError, match=says):
        pipeline(*filled)
    assert not Batch.objects.exists()


def test_as_applies_the_batchs_workspace_rules(parent: Feature, no_enqueue: Any) -> None:
    with no_enqueue():
        pipeline("subtasks", str(parent.pk))
    batch = Batch.objects.get()

    with pytest.raises(CommandError, match=f"No batch #{batch.pk}"):
        pipeline("--as", "charlie", "batch", str(batch.pk))
    with pytest.raises(CommandError, match="vera"):
        pipeline("--as", "vera", "batch", str(batch.pk), "--stop")
    assert pipeline("--as", "vera", "batch", str(batch.pk)).startswith(f"Batch #{batch.pk}")
    assert not Run.objects.filter(batch=batch, status=Run.Status.CANCELLED).exists()
