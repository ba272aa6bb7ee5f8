"""Launch an epic's whole tree: its stories' pipelines, then their subtasks', in dependency order;
a failed story blocks its dependents by name; one Stop stops everything; one Retry resumes."""

from __future__ import annotations

from typing import Any

import pytest

from features.models import Feature
from pipeline import engine
from pipeline.models import Batch, Run
from skills.catalog import latest_skill
from skills.models import RecipeStep, StageRecipe
from tests.conftest import Story
from tests.engine_helpers import chain, stage
from tests.tree_helpers import edges, epic, epic_with_stories, run_of, stories

pytestmark = pytest.mark.django_db


def assert_in_dependency_order(cards: list[Feature], stage_key: str) -> None:
    """Each card's run in `stage_key` started only after the runs of the cards it depends on
    had finished."""
    by_pk = {c.pk: c for c in cards}
    pairs = edges(cards)
    assert pairs, "the cards have dependencies between them"
    for dependent, dependency in pairs:
        before = run_of(by_pk[dependency], stage_key)
        after = run_of(by_pk[dependent], stage_key)
        assert before.finished_at is not None
        assert after.started_at is not None
        assert after.started_at >= before.finished_at, (by_pk[dependent], by_pk[dependency])


def test_a_whole_tree_runs_the_epic_then_its_stories_in_dependency_order(
    product_story: Story, eager: Any
) -> None:
    parent = epic(product_story.workspace)

    with eager():
        started = engine.launch_tree(parent, product_story.owner)

    batch = Batch.objects.get(pk=started.batch.pk)
    planned = stories(parent)
    assert len(planned) == 6  # written by the epic's own pipeline, the batch's first run
    assert [r.stage.key for r in chain(parent)][-1] == "tickets"
    assert_in_dependency_order(planned, "tickets")
    assert {r.batch_id for s in planned for r in chain(s)} == {batch.pk}
    assert all(s.children.filter(kind=Feature.Kind.TASK).exists() for s in planned)
    assert batch.finished_at is not None
    assert engine.trees.final_message(batch).startswith(f"6 stories added to “{parent.title}”; ")


def test_subtasks_run_after_their_story_and_start_by_themselves_when_their_dependencies_finish(
    product_story: Story, eager: Any
) -> None:
    # Subtasks have automated work here: the work board's Doing stage runs a recipe.
    doing = stage(product_story.workspace, "doing")
    recipe = StageRecipe.objects.create(stage=doing)
    RecipeStep.objects.create(recipe=recipe, skill=latest_skill("write-spec"), order=1)
    parent = epic_with_stories(product_story, eager, title="Checkout")
    first_story = stories(parent)[0]
    Feature.objects.filter(parent=parent).exclude(pk=first_story.pk).delete()

    with eager():
        engine.launch_tree(parent, product_story.owner)

    subtasks = list(first_story.children.order_by("source_index"))
    story_run = run_of(first_story, "tickets")
    head = run_of(subtasks[0], "doing")
    assert head.started_at is not None
    assert story_run.finished_at is not None
    assert head.started_at >= story_run.finished_at  # after its story's pipeline
    subtasks[0].refresh_from_db()
    assert subtasks[0].stage.key == "review"
    waiting = Run.objects.get(feature=subtasks[1], status=Run.Status.WAITING)
    subtasks[1].refresh_from_db()
    assert subtasks[1].status_note.startswith(f"Waiting for “{subtasks[0].title[:60]}")

    with eager():  # a person finishes the first subtask: the next one starts by itself
        engine.move_feature(
            subtasks[0], stage(product_story.workspace, "finished"), user=product_story.teammate
        )

    waiting.refresh_from_db()
    assert waiting.status == Run.Status.SUCCEEDED
    assert waiting.started_at is not None
    assert head.finished_at is not None
    assert waiting.started_at >= head.finished_at


def test_a_failed_story_blocks_its_dependents_by_name_stop_stops_all_and_retry_resumes(
    product_story: Story, eager: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    planned = stories(parent)
    first = planned[0]
    Feature.objects.filter(pk=first.pk).update(
        description="Welcome. [offline:fail=permanent@write-acceptance-criteria]"
    )

    with eager():
        started = engine.launch_tree(parent, product_story.owner)

    batch = Batch.objects.get(pk=started.batch.pk)
    assert run_of(first, "tickets", Run.Status.FAILED)
    notes = {s.pk: (s.status, s.status_note) for s in stories(parent)}
    # Stories 2 and 4 wait for the first, which failed: they say so instead of waiting forever.
    for dependent in (planned[1], planned[3]):
        assert notes[dependent.pk] == (
            Feature.Status.BLOCKED,
            f"Blocked by “{first.title}” (failed)",
        )
    for dependent in (planned[2], planned[4], planned[5]):
        assert notes[dependent.pk] == (Feature.Status.BLOCKED, f"Waiting for “{planned[1].title}”")
    assert Run.objects.filter(batch=batch, status=Run.Status.WAITING).count() == 5
    assert batch.finished_at is None

    with eager():
        stopped = engine.stop_batch(batch, product_story.owner)

    assert stopped == 5
    assert not Run.objects.filter(batch=batch, status__in=Run.ACTIVE_STATUSES).exists()
    for card in stories(parent)[1:]:
        assert card.status != Feature.Status.RUNNING
        assert not card.children.exists()  # stopped before any of them ran

    Feature.objects.filter(pk=first.pk).update(description="Welcome.")
    with eager():
        retried = engine.retry_batch(batch, product_story.owner)

    assert sorted(r.feature_id for r in retried) == sorted(s.pk for s in planned)
    assert_in_dependency_order(stories(parent), "tickets")
    for card in stories(parent):
        assert Run.objects.filter(feature=card, status=Run.Status.SUCCEEDED).count() == 1
        assert card.children.filter(kind=Feature.Kind.TASK).exists()
    assert [r.status for r in chain(first)] == ["failed", "succeeded"]
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert batch.stopped_at is None


def test_a_running_tree_is_not_launched_twice(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)

    with no_enqueue():
        started = engine.launch_tree(parent, product_story.owner)
        with pytest.raises(engine.AlreadyRunning, match=f"batch #{started.batch.pk}"):
            engine.launch_tree(parent, product_story.owner)

    assert Batch.objects.count() == 1


def test_a_tree_with_nothing_left_to_run_says_so(product_story: Story, eager: Any) -> None:
    parent = epic_with_stories(product_story, eager)
    with eager():
        engine.generate_subtasks(parent, product_story.owner)

    # Every story planned and in Build; subtasks have no automated stage: nothing to run.
    with pytest.raises(engine.NothingToRun, match="Nothing to run in the tree of"):
        engine.launch_tree(parent, product_story.owner)
    assert Batch.objects.filter(kind=Batch.Kind.TREE).count() == 0


def test_the_sweep_releases_a_waiting_run_whose_wait_is_over(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    with no_enqueue():
        started = engine.launch_tree(parent, product_story.owner)
    second = stories(parent)[1]
    waiting = Run.objects.get(feature=second, status=Run.Status.WAITING)
    # The release its dependency's completion would have made was missed (say, an operator
    # finished the dependency by hand, around the engine).
    Run.objects.filter(batch=started.batch).exclude(pk=waiting.pk).update(
        status=Run.Status.SUCCEEDED
    )

    with no_enqueue():
        assert engine.sweep_if_due("beat") == {
            "dispatched": 0,
            "requeued": 0,
            "failed": 0,
            "released": 1,
        }

    waiting.refresh_from_db()
    assert waiting.status == Run.Status.QUEUED
    second.refresh_from_db()
    assert second.stage.key == "tickets"  # moved into the stage its run works in


def test_retrying_one_failed_story_from_its_card_lets_the_tree_go_on(
    product_story: Story, eager: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    first = stories(parent)[0]
    Feature.objects.filter(pk=first.pk).update(description="[offline:fail=permanent]")
    with eager():
        started = engine.launch_tree(parent, product_story.owner)
    failed = run_of(first, "tickets", Run.Status.FAILED)

    Feature.objects.filter(pk=first.pk).update(description="Fixed.")
    with eager():
        retried = engine.retry_run(failed, product_story.owner)  # the card's own Retry button

    assert retried.batch_id == started.batch.pk
    assert not Run.objects.filter(batch=started.batch, status=Run.Status.WAITING).exists()
    assert_in_dependency_order(stories(parent), "tickets")
    batch = Batch.objects.get(pk=started.batch.pk)
    assert batch.finished_at is not None
    assert batch.summary["failed"] == 0  # every card ended well in the end
