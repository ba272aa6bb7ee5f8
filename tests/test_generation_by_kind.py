"""Generated work follows the parent's kind: an epic's pipeline makes stories, a story's makes
subtasks (tasks whose parent is the story), a feature's makes tasks. Each list becomes cards in
one insert keyed by (run, position), so retries and duplicate deliveries never make them twice.
"""

from __future__ import annotations

from typing import Any

import pytest

from features.actions import do_update_feature
from features.models import Dependency, Feature
from pipeline import engine
from pipeline.engine.generation import apply_generated_work
from pipeline.executor import execute_run
from pipeline.models import Run
from pipeline.providers.base import StepRequest
from pipeline.providers.offline import OfflineProvider
from tests.conftest import Story
from tests.engine_helpers import card, chain

pytestmark = pytest.mark.django_db


def card_of_kind(story: Story, kind: str, title: str, **kwargs: Any) -> Feature:
    feature = card(story.workspace, title, **kwargs)
    Feature.objects.filter(pk=feature.pk).update(kind=kind)
    feature.refresh_from_db()
    return feature


def tasks_run(feature: Feature) -> Run:
    return next(r for r in chain(feature) if r.stage.key == "tasks")


def test_an_epics_pipeline_generates_stories(story: Story, eager: Any) -> None:
    epic = card_of_kind(story, Feature.Kind.EPIC, "Payments")

    with eager():
        engine.launch_pipeline(epic, story.owner)

    children = list(epic.children.select_related("stage").order_by("source_index"))
    assert 3 <= len(children) <= 6
    assert {c.kind for c in children} == {Feature.Kind.STORY}
    # Stories wait on the feature board, where their own pipeline generates their subtasks.
    assert {c.stage.key for c in children} == {"idea"}
    assert all(c.title.startswith("As a") for c in children)
    assert {c.source_run_id for c in children} == {tasks_run(epic).pk}
    assert [c.source_index for c in children] == list(range(len(children)))


def test_a_storys_pipeline_generates_its_subtasks(story: Story, eager: Any) -> None:
    user_story = card_of_kind(story, Feature.Kind.STORY, "Pay by card")

    with eager():
        engine.launch_pipeline(user_story, story.owner)

    children = list(user_story.children.order_by("source_index"))
    assert 3 <= len(children) <= 6
    assert {(c.kind, c.parent_id) for c in children} == {(Feature.Kind.TASK, user_story.pk)}
    assert all(c.title.startswith("Subtask:") for c in children)
    assert Dependency.objects.filter(feature__in=children).exists()


def test_a_features_pipeline_still_generates_tasks(story: Story, eager: Any) -> None:
    feature = card(story.workspace, "Checkout page")

    with eager():
        engine.launch_pipeline(feature, story.owner)

    kinds = set(feature.children.values_list("kind", flat=True))
    assert kinds == {Feature.Kind.TASK}
    assert not feature.children.filter(title__startswith="Subtask:").exists()


def test_the_offline_provider_shapes_the_list_by_kind() -> None:
    def titles(kind: str) -> list[str]:
        request = StepRequest(
            skill_slug="generate-tasks",
            prompt="",
            output="tasks",
            artifact_name="tasks.json",
            inputs={"title": "Payments", "description": "", "kind": kind},
            sections=[],
            model="",
            timeout_seconds=10,
            attempt=1,
        )
        return [t["title"] for t in OfflineProvider().generate(request).data["tasks"]]

    assert titles("epic")[0] == "As a new user, I can start using Payments"
    assert titles("story")[0].startswith("Subtask: ")
    assert titles("feature")[0] == "Model the data for Payments"
    assert len(titles("epic")) == len(titles("story")) == len(titles("feature"))


def test_a_duplicate_delivery_makes_the_cards_once(story: Story, no_enqueue: Any) -> None:
    epic = card_of_kind(story, Feature.Kind.EPIC, "Payments", at="tasks")
    with no_enqueue():
        run = engine.launch_pipeline(epic, story.owner).run
        execute_run(run.pk, "worker-a/1")
        first = sorted(epic.children.values_list("pk", flat=True))
        execute_run(run.pk, "worker-b/2")  # the same message delivered again

    assert sorted(epic.children.values_list("pk", flat=True)) == first
    assert len(first) >= 3
    run.refresh_from_db()
    assert (run.status, run.attempt) == (Run.Status.SUCCEEDED, 1)


def test_completing_twice_makes_the_cards_once(story: Story, no_enqueue: Any) -> None:
    user_story = card_of_kind(story, Feature.Kind.STORY, "Pay by card", at="tasks")
    with no_enqueue():
        run = engine.launch_pipeline(user_story, story.owner).run
        execute_run(run.pk, "worker-a/1")
        run.refresh_from_db()
        steps = [engine.StepResult.from_dict(raw) for raw in run.result["steps"]]
        created = sorted(run.generation.added)

        assert engine.complete_run(run.pk, run.attempt, steps, {}) is False
        # Even applied again for the same run, its list is found applied and adds nothing.
        assert apply_generated_work(run, user_story) is None

    assert sorted(user_story.children.values_list("pk", flat=True)) == created
    assert Dependency.objects.filter(feature__parent=user_story).count() == len(
        [d for t in steps[0].data["tasks"] for d in t["depends_on"]]
    )


def test_a_failed_generation_resumes_and_makes_the_cards_once(story: Story, eager: Any) -> None:
    epic = card_of_kind(
        story,
        Feature.Kind.EPIC,
        "Payments",
        description="Cards and refunds. [offline:fail=permanent@generate-tasks]",
    )
    with eager():
        engine.launch_pipeline(epic, story.owner)
    epic.refresh_from_db()
    assert epic.status == Feature.Status.FAILED
    assert not epic.children.exists()

    do_update_feature(epic, expected_version=epic.version, description="Cards and refunds.")
    with eager():
        launched = engine.launch_pipeline(epic, story.owner)

    assert launched.resumed
    stories = epic.children.all()
    assert stories.count() >= 3
    assert {s.kind for s in stories} == {Feature.Kind.STORY}
    assert {s.source_run_id for s in stories} == {launched.run.pk}
