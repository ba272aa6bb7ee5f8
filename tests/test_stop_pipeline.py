"""stop_pipeline: cancels the active run, ends the chain, and a late result is discarded."""

from __future__ import annotations

import pytest

from features.models import Artifact, Feature
from pipeline import engine
from pipeline.models import Run, RunLog
from tests.engine_helpers import card, chain


def test_it_cancels_the_queued_run_and_clears_the_chain(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        launched = engine.launch_pipeline(feature, story.owner)
        assert engine.stop_pipeline(feature, story.teammate) == 1
    run = Run.objects.get(pk=launched.run.pk)
    assert run.status == Run.Status.CANCELLED
    assert run.pipeline_next == []
    assert run.error_message == "Stopped by bob."
    feature.refresh_from_db()
    assert feature.status == Feature.Status.IDLE
    assert "stopped by bob" in feature.status_note


def test_it_discards_the_late_result_of_a_cancelled_run(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        launched = engine.launch_pipeline(feature, story.owner)
        claimed = engine.claim_run(launched.run.pk, "worker-a/1")
        assert claimed is not None
        engine.stop_pipeline(feature, story.owner)
        step = engine.StepResult(
            "write-architecture",
            1,
            "document",
            "architecture.md",
            "# Architecture\n## Overview\n",
            {},
            {},
        )
        assert engine.complete_run(claimed.pk, claimed.attempt, [step], {}) is False
    run = Run.objects.get(pk=claimed.pk)
    assert run.status == Run.Status.CANCELLED
    assert not Artifact.objects.filter(feature=feature).exists()
    assert len(chain(feature)) == 1  # nothing advanced
    feature.refresh_from_db()
    assert feature.stage.key == "architecture"


def test_it_stops_a_step_between_steps_when_cancelled(story, eager, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        launched = engine.launch_pipeline(feature, story.owner)
        engine.stop_pipeline(feature, story.owner)
    # A message that still arrives finds nothing to claim.
    from pipeline.executor import execute_run

    execute_run(launched.run.pk, "worker-a/1")
    run = Run.objects.get(pk=launched.run.pk)
    assert (run.status, run.attempt) == (Run.Status.CANCELLED, 0)
    assert RunLog.objects.filter(run=run, message__startswith="Cancelled").exists()


def test_it_says_when_there_is_nothing_to_stop(story):
    feature = card(story.workspace)
    with pytest.raises(engine.EngineError, match="Nothing to stop"):
        engine.stop_pipeline(feature, story.owner)
