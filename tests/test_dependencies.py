"""A card whose dependencies are not finished is blocked: Launch refuses it, automation skips it,
and it becomes idle once every card it waits for reaches a done stage (moved by a person or by
a pipeline)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from features.models import Dependency, Feature
from pipeline import engine
from pipeline.models import Run
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


def test_a_blocked_card_still_plans(story: Story, no_enqueue: Any) -> None:
    _first, second, _third = waiting_pair(story)

    with no_enqueue():
        launched = engine.launch_pipeline(second, story.owner)

    # Planning never waits for dependencies: architecture and tasks are not delivery.
    assert launched.pipeline == ["architecture", "tasks"]
    assert launched.run.status == Run.Status.QUEUED


def delivery_pair(story: Story) -> tuple[Feature, Feature]:
    """A card in Building (delivery) waiting for another that is still being specified."""
    first = card(story.workspace, "Data model", at="spec")
    second = card(story.workspace, "Checkout API", at="building")
    Dependency.objects.create(feature=second, depends_on=first)
    return first, second


def test_launch_refuses_a_blocked_cards_delivery(delivery_story: Story, no_enqueue: Any) -> None:
    _first, second = delivery_pair(delivery_story)

    with no_enqueue(), pytest.raises(engine.EngineError) as refused:
        engine.launch_pipeline(second, delivery_story.owner)  # its next stage is QA

    assert str(refused.value) == "Blocked by “Data model”: finish it first"
    assert not second.runs.exists()
    second.refresh_from_db()
    assert second.stage.key == "building"


def test_the_cli_says_why_a_launch_is_refused(delivery_story: Story) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    _first, second = delivery_pair(delivery_story)

    with pytest.raises(CommandError, match="Blocked by “Data model”: finish it first"):
        call_command("pipeline", "launch", str(second.pk))


def test_moving_a_blocked_card_into_a_planning_stage_runs_it(story: Story, no_enqueue: Any) -> None:
    _first, second, _third = waiting_pair(story)

    with no_enqueue():
        moved = engine.move_feature(
            second, stage(story.workspace, "architecture"), user=story.owner
        )

    assert moved.stage.key == "architecture"
    (run,) = second.runs.all()
    assert (run.stage.key, run.status, run.pipeline_next) == ("architecture", "queued", ["tasks"])


def test_a_blocked_card_moved_into_delivery_waits_then_starts_by_itself(
    delivery_story: Story, eager: Any
) -> None:
    first, second = delivery_pair(delivery_story)
    qa = stage(delivery_story.workspace, "qa")

    with eager():
        engine.move_feature(second, qa, user=delivery_story.owner)
    (waiting,) = second.runs.all()
    assert (waiting.stage, waiting.status) == (qa, Run.Status.WAITING)
    second.refresh_from_db()
    assert (second.status, second.status_note) == (
        Feature.Status.BLOCKED,
        "Waiting for “Data model”",
    )

    with eager():  # its dependency is finished: the waiting QA run starts by itself
        engine.move_feature(
            first, stage(delivery_story.workspace, "done"), user=delivery_story.owner
        )

    waiting.refresh_from_db()
    assert waiting.status == Run.Status.SUCCEEDED
    assert waiting.logs.filter(message="What it waited for finished: queued").exists()
    second.refresh_from_db()
    assert second.stage.key == "done"  # QA and final review ran, and it reached Done


def test_a_dependency_that_failed_is_named_on_the_waiting_card(
    delivery_story: Story, eager: Any
) -> None:
    first, second = delivery_pair(delivery_story)
    Feature.objects.filter(pk=first.pk).update(description="[offline:fail=permanent]")
    with eager():
        engine.move_feature(
            second, stage(delivery_story.workspace, "qa"), user=delivery_story.owner
        )
        engine.launch_pipeline(first, delivery_story.owner)

    second.refresh_from_db()
    assert (second.status, second.status_note) == (
        Feature.Status.BLOCKED,
        "Blocked by “Data model” (failed)",
    )

    Feature.objects.filter(pk=first.pk).update(description="Fixed.")
    with eager():
        engine.retry_run(first.runs.get(status="failed"), delivery_story.owner)
    second.refresh_from_db()
    assert second.status_note == "Waiting for “Data model”"  # running again: no longer failed


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


def test_a_pipeline_held_before_delivery_goes_on_by_itself_when_dependencies_finish(
    delivery_story: Story, eager: Any
) -> None:
    from features.models import Workspace
    from skills.catalog import latest_skill
    from skills.models import RecipeStep, StageRecipe

    workspace = delivery_story.workspace
    # Automatic to the last stage, and Building has automated work too.
    Workspace.objects.filter(pk=workspace.pk).update(automation_mode="auto_all")
    building = stage(workspace, "building")
    recipe = StageRecipe.objects.create(stage=building)
    RecipeStep.objects.create(recipe=recipe, skill=latest_skill("write-spec"), order=1)
    first = card(workspace, "Data model", at="spec")
    second = card(workspace, "Checkout API", at="spec")
    Dependency.objects.create(feature=second, depends_on=first)

    with eager():
        launched = engine.launch_pipeline(second, delivery_story.owner)

    assert launched.pipeline == ["spec", "spec-review"]  # planning only, while blocked
    second.refresh_from_db()
    assert second.stage.key == "building"
    waiting = Run.objects.get(feature=second, status=Run.Status.WAITING)
    assert (waiting.stage, waiting.pipeline_next) == (building, ["qa", "final-review"])

    with eager():
        engine.move_feature(first, stage(workspace, "done"), user=delivery_story.owner)

    second.refresh_from_db()
    assert second.stage.key == "done"  # Building, QA and Final review ran by themselves
    assert [r.stage.key for r in Run.objects.filter(feature=second).order_by("id")] == [
        "spec",
        "spec-review",
        "building",
        "qa",
        "final-review",
    ]
