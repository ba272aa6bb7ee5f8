"""Generate subtasks for all of an epic's stories (or some): one batch of ordinary runs, each
story's path (acceptance criteria, then subtasks), never a story's subtasks twice, one final
toast naming what was added."""

from __future__ import annotations

from typing import Any

import pytest

from features import events
from features.models import Artifact, Feature
from pipeline import engine
from pipeline.models import Batch, Generation, Run
from tests.conftest import Story
from tests.engine_helpers import card, chain
from tests.tree_helpers import epic, epic_with_stories, stories

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the engine publishes after commit (toasts, card changes)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "publish", lambda group, event: sent.append(event))
    return sent


def toasts(published: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in published if e["type"] == "board.toast"]


def test_it_generates_every_storys_subtasks_in_one_batch(
    product_story: Story, eager: Any, published: list[dict[str, Any]]
) -> None:
    parent = epic_with_stories(product_story, eager)
    published.clear()

    with eager():
        started = engine.generate_subtasks(parent, product_story.owner)

    planned = stories(parent)
    assert len(planned) == 6
    assert {r.feature_id for r in started.runs} == {s.pk for s in planned}
    total = 0
    for user_story in planned:
        subtasks = user_story.children.filter(kind=Feature.Kind.TASK)
        assert 3 <= subtasks.count() <= 6
        total += subtasks.count()
        # Its path: acceptance criteria and subtasks in Tickets, then it stops for people.
        assert [(r.stage.key, r.status, r.batch_id) for r in chain(user_story)] == [
            ("tickets", "succeeded", started.batch.pk)
        ]
        assert user_story.stage.key == "build"
        criteria = Artifact.objects.get(feature=user_story, name="acceptance-criteria.md")
        assert "Given " in criteria.content
        assert criteria.version == 1
    batch = Batch.objects.get(pk=started.batch.pk)
    assert batch.finished_at is not None
    message = f"{total} subtasks added to 6 stories"
    assert engine.trees.final_message(batch) == message
    assert toasts(published) == [message]  # one toast for the batch, none per story


def test_stories_that_depend_on_each_other_generate_at_once(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)

    with no_enqueue():
        started = engine.generate_subtasks(parent, product_story.owner)

    # Planning is not delivery: no story waits for the stories it depends on.
    assert {r.status for r in started.runs} == {Run.Status.QUEUED}
    assert len(started.runs) == 6


def test_it_never_generates_a_storys_subtasks_twice(product_story: Story, eager: Any) -> None:
    parent = epic_with_stories(product_story, eager)
    with eager():
        engine.generate_subtasks(parent, product_story.owner)
    before = {s.pk: sorted(s.children.values_list("pk", flat=True)) for s in stories(parent)}

    with pytest.raises(engine.NothingToRun) as refused, eager():
        engine.generate_subtasks(parent, product_story.owner)

    assert "already has subtasks" in str(refused.value)
    assert Batch.objects.count() == 1  # the refused request wrote nothing
    after = {s.pk: sorted(s.children.values_list("pk", flat=True)) for s in stories(parent)}
    assert after == before
    assert Generation.objects.filter(parent__in=before).count() == 6


def test_it_generates_for_a_selection_only(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    chosen = stories(parent)[1:3]

    with no_enqueue():
        started = engine.generate_subtasks(
            parent, product_story.owner, story_ids=[s.pk for s in chosen]
        )

    assert sorted(r.feature_id for r in started.runs) == sorted(s.pk for s in chosen)
    assert Run.objects.filter(batch=started.batch).count() == 2


def test_it_leaves_out_a_story_that_has_subtasks_and_says_why(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    first = stories(parent)[0]
    with eager():
        engine.generate_subtasks(parent, product_story.owner, story_ids=[first.pk])

    with no_enqueue():
        started = engine.generate_subtasks(parent, product_story.owner)

    assert first.pk not in {r.feature_id for r in started.runs}
    assert [(c.pk, why) for c, why in started.skipped] == [(first.pk, "already has subtasks")]


def test_it_refuses_ids_that_are_not_the_epics_stories(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    stranger = card(product_story.workspace, "Another card")

    with no_enqueue(), pytest.raises(engine.EngineError) as refused:
        engine.generate_subtasks(parent, product_story.owner, story_ids=[stranger.pk])

    assert str(refused.value) == f"Not stories of “{parent.title}”: #{stranger.pk}."
    assert not Batch.objects.exists()
    assert not Run.objects.filter(feature__parent=parent).exists()


def test_it_refuses_a_card_that_is_not_an_epic(product_story: Story) -> None:
    feature = card(product_story.workspace, "Dark mode")

    with pytest.raises(engine.EngineError, match="starts from an epic; “Dark mode” is a feature"):
        engine.generate_subtasks(feature, product_story.owner)


def test_an_epic_without_stories_is_told_to_write_them_first(product_story: Story) -> None:
    with pytest.raises(engine.NothingToRun, match="has no stories yet"):
        engine.generate_subtasks(epic(product_story.workspace), product_story.owner)


def test_a_failed_story_ends_the_batch_with_a_failure_and_retry_finishes_it(
    product_story: Story, eager: Any, published: list[dict[str, Any]]
) -> None:
    parent = epic_with_stories(product_story, eager)
    broken = stories(parent)[2]
    Feature.objects.filter(pk=broken.pk).update(description="[offline:fail=permanent]")
    published.clear()

    with eager():
        started = engine.generate_subtasks(parent, product_story.owner)

    batch = Batch.objects.get(pk=started.batch.pk)
    assert batch.finished_at is not None
    assert batch.summary["failed"] == 1
    assert toasts(published)[-1].endswith("; 1 card failed or stopped")
    assert engine.progress(batch).failed == 1

    Feature.objects.filter(pk=broken.pk).update(description="Fixed.")
    with eager():
        retried = engine.retry_batch(batch, product_story.owner)

    assert [r.feature_id for r in retried] == [broken.pk]
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert batch.summary["failed"] == 0
    assert broken.children.filter(kind=Feature.Kind.TASK).exists()
    assert [r.status for r in chain(broken)] == ["failed", "succeeded"]


def test_stop_stops_every_run_of_the_batch(
    product_story: Story, eager: Any, no_enqueue: Any
) -> None:
    parent = epic_with_stories(product_story, eager)
    with no_enqueue():
        started = engine.generate_subtasks(parent, product_story.owner)
        stopped = engine.stop_batch(started.batch, product_story.teammate)

    assert stopped == 6
    assert set(Run.objects.filter(batch=started.batch).values_list("status", flat=True)) == {
        Run.Status.CANCELLED
    }
    batch = Batch.objects.get(pk=started.batch.pk)
    assert batch.stopped_at is not None
    assert batch.finished_at is not None
    with pytest.raises(engine.EngineError, match="Nothing to stop"):
        engine.stop_batch(batch, product_story.teammate)
