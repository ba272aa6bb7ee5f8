"""Claims are conditional updates; attempt fences out zombies; duplicate delivery is harmless."""

from __future__ import annotations

from features.models import Artifact
from pipeline import engine
from pipeline.executor import execute_run
from pipeline.models import Run
from tests.engine_helpers import card, chain

STEP = engine.StepResult(
    "write-architecture",
    1,
    "document",
    "architecture.md",
    "# A\n## Overview\n## Components\n## Data model\n## Risks\n",
    {},
    {},
)


def test_only_one_claim_wins(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        first = engine.claim_run(run.pk, "worker-a/1")
        second = engine.claim_run(run.pk, "worker-b/2")
    assert first is not None
    assert first.attempt == 1
    assert second is None
    run.refresh_from_db()
    assert (run.status, run.worker_id, run.attempt) == ("running", "worker-a/1", 1)


def test_a_rescued_zombie_cannot_write_its_result(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        zombie = engine.claim_run(run.pk, "worker-a/1")
        assert zombie is not None
        assert engine.rescue_run(zombie, None)
        successor = engine.claim_run(run.pk, "worker-b/2")
        assert successor is not None
        assert successor.attempt == 2
        assert engine.complete_run(run.pk, zombie.attempt, [STEP], {}) is False
        assert engine.complete_run(run.pk, successor.attempt, [STEP], {}) is True
    assert Artifact.objects.filter(feature=feature, name="architecture.md").count() == 1
    assert [r.stage.key for r in chain(feature)] == ["architecture", "tasks"]


def test_the_same_message_delivered_twice_has_one_effect(story, eager, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
    with eager():
        execute_run(run.pk, "worker-a/1")
        execute_run(run.pk, "worker-b/2")
    first = Run.objects.get(pk=run.pk)
    assert (first.status, first.attempt, first.worker_id) == ("succeeded", 1, "worker-a/1")
    assert Run.objects.filter(feature=feature, stage__key="architecture").count() == 1
    assert Run.objects.filter(parent_run=first).count() == 1
    assert Artifact.objects.filter(feature=feature, name="architecture.md").count() == 1
