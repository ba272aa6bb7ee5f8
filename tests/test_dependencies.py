"""A card whose dependencies are not finished is blocked: Launch refuses it, automation skips it,
and it becomes idle once every card it waits for reaches a done stage (moved by a person or by
a pipeline)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from features.models import Dependency, Feature
from pipeline import engine
from tests.conftest import Story
from tests.engine_helpers import card, stage

pytestmark = pytest.mark.django_db


def generated_tasks(story: Story, eager: Any) -> list[Feature]:
    feature = card(story.workspace, "Checkout page")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    return list(feature.children.order_by("source_index"))


def waiting_pair(story: Story) -> tuple[Feature, Feature, Feature]:
    """Two cards on the feature board, the second waiting for the first and a third."""
    first = card(story.workspace, "Data model")
    second = card(story.workspace, "Checkout API")
    third = card(story.workspace, "Design")
    Dependency.objects.create(feature=second, depends_on=first)
    Dependency.objects.create(feature=second, depends_on=third)
    Feature.objects.filter(pk=second.pk).update(status=Feature.Status.BLOCKED)
    second.refresh_from_db()
    return first, second, third


def test_it_stores_generated_dependencies_and_blocks_the_waiting_tasks(
    story: Story, eager: Any
) -> None:
    tasks = generated_tasks(story, eager)

    assert list(tasks[1].dependencies.values_list("depends_on_id", flat=True)) == [tasks[0].pk]
    assert tasks[0].status == Feature.Status.IDLE
    assert all(t.status == Feature.Status.BLOCKED for t in tasks[1:])


def test_launch_refuses_a_blocked_card(story: Story, no_enqueue: Any) -> None:
    first, second, third = waiting_pair(story)

    with no_enqueue(), pytest.raises(engine.EngineError) as refused:
        engine.launch_pipeline(second, story.owner)

    assert str(refused.value) == f"Blocked by #{first.pk}, #{third.pk}: finish them first"
    assert not second.runs.exists()


def test_the_cli_says_why_a_launch_is_refused(story: Story) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    first, second, third = waiting_pair(story)

    with pytest.raises(CommandError, match=rf"Blocked by #{first.pk}, #{third.pk}"):
        call_command("pipeline", "launch", str(second.pk))


def test_automation_skips_a_blocked_card_moved_into_an_automated_stage(
    story: Story, no_enqueue: Any
) -> None:
    first, second, third = waiting_pair(story)

    with no_enqueue():
        moved = engine.move_feature(
            second, stage(story.workspace, "architecture"), user=story.owner
        )

    assert moved.stage.key == "architecture"  # the move itself is the person's to make
    assert not second.runs.exists()
    second.refresh_from_db()
    assert second.status == Feature.Status.BLOCKED
    assert second.status_note == f"Blocked by #{first.pk}, #{third.pk}: finish them first"


def test_it_unblocks_when_a_person_moves_the_last_dependency_to_done(
    story: Story, no_enqueue: Any
) -> None:
    first, second, third = waiting_pair(story)
    done = stage(story.workspace, "done")

    with no_enqueue():
        engine.move_feature(first, done, user=story.owner)
        second.refresh_from_db()
        assert second.status == Feature.Status.BLOCKED  # still waits for the third
        engine.move_feature(third, done, user=story.owner)

    second.refresh_from_db()
    assert (second.status, second.status_note) == (Feature.Status.IDLE, "")
    with no_enqueue():
        launched = engine.launch_pipeline(second, story.owner)
    assert launched.pipeline == ["architecture", "tasks"]


def test_it_unblocks_generated_tasks_as_their_dependencies_finish(
    story: Story, eager: Any, no_enqueue: Any
) -> None:
    tasks = generated_tasks(story, eager)
    finished = stage(story.workspace, "finished")

    with no_enqueue():
        engine.move_feature(tasks[0], finished, user=story.teammate)

    statuses = {t.pk: t.status for t in Feature.objects.filter(pk__in=[t.pk for t in tasks])}
    assert statuses[tasks[1].pk] == Feature.Status.IDLE  # waited for the first only
    assert all(statuses[t.pk] == Feature.Status.BLOCKED for t in tasks[2:])


def test_a_pipeline_reaching_done_unblocks_its_dependents(story: Story, eager: Any) -> None:
    first, second, third = waiting_pair(story)
    Dependency.objects.filter(depends_on=third).delete()

    with eager():
        engine.launch_pipeline(first, story.owner)

    first.refresh_from_db()
    assert first.stage.key == "done"
    second.refresh_from_db()
    assert second.status == Feature.Status.IDLE


def test_a_move_to_a_stage_that_is_not_done_keeps_them_blocked(
    story: Story, no_enqueue: Any
) -> None:
    first, second, third = waiting_pair(story)
    Dependency.objects.filter(depends_on=third).delete()

    with no_enqueue():
        engine.move_feature(first, stage(story.workspace, "tasks"), user=story.owner)

    second.refresh_from_db()
    assert second.status == Feature.Status.BLOCKED


def test_the_card_page_shows_what_a_card_waits_for_and_blocks(story: Story) -> None:
    first, second, third = waiting_pair(story)
    client = story.client_for(story.viewer)

    waiting = client.get(reverse("features:detail", args=[second.pk])).content.decode()
    blocking = client.get(reverse("features:detail", args=[first.pk])).content.decode()

    assert "Waits for:" in waiting
    assert f"#{first.pk} Data model" in waiting
    assert f"#{third.pk} Design" in waiting
    assert "Blocks:" in blocking
    assert f"#{second.pk} Checkout API" in blocking
