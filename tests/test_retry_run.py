"""retry_run and automatic retries: transient errors back off and retry, permanent ones stop."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card, chain


def test_it_retries_transient_errors_and_then_succeeds(story, eager, settings):
    settings.RUNWAY_RETRY_BASE_SECONDS = 0
    feature = card(
        story.workspace, description="Flaky. [offline:fail=transient:2@write-architecture]"
    )
    with eager():
        engine.launch_pipeline(feature, story.owner)
    first = chain(feature)[0]
    assert (first.status, first.attempt) == (Run.Status.SUCCEEDED, 3)
    warnings = first.logs.filter(message__startswith="Transient error").count()
    assert warnings == 2
    assert first.result["gates"][0]["passed"] is True
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_it_fails_when_transient_errors_outlast_the_retry_count(story, eager, settings):
    settings.RUNWAY_RETRY_BASE_SECONDS = 0
    feature = card(story.workspace, description="Down. [offline:fail=transient:9]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    assert run.status == Run.Status.FAILED
    assert run.error_kind == Run.ErrorKind.TRANSIENT
    assert run.attempt == 3  # the first try and the step's 2 retries
    assert run.error_message.startswith("Gave up after 3 attempts of step 1")
    feature.refresh_from_db()
    assert feature.status == Feature.Status.FAILED


def test_it_fails_at_once_on_a_permanent_error_with_an_actionable_message(story, eager):
    feature = card(story.workspace, description="[offline:fail=permanent]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    assert (run.status, run.attempt, run.error_kind) == ("failed", 1, "permanent")
    assert "Remove the directive and retry" in run.error_message
    feature.refresh_from_db()
    assert feature.status == Feature.Status.FAILED
    assert feature.stage.key == "architecture"


def test_a_person_retries_a_failed_run_and_the_chain_continues(story, eager):
    feature = card(story.workspace, description="[offline:fail=permanent]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    failed = chain(feature)[0]
    Feature.objects.filter(pk=feature.pk).update(description="Fixed now.")
    with eager():
        retried = engine.retry_run(failed, story.teammate)
    assert retried.parent_run_id == failed.pk
    runs = chain(feature)
    assert [(r.stage.key, r.status) for r in runs] == [
        ("architecture", "failed"),
        ("architecture", "succeeded"),
        ("tasks", "succeeded"),
    ]
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_a_run_can_be_continued_only_once(story, eager):
    feature = card(story.workspace, description="[offline:fail=permanent]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    failed = chain(feature)[0]
    with eager():
        engine.retry_run(failed, story.owner)  # fails again: the directive is still there
    with pytest.raises(engine.EngineError, match="already continued"):
        engine.retry_run(failed, story.owner)


def test_only_failed_or_cancelled_runs_can_be_retried(story, eager):
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    with pytest.raises(engine.EngineError, match="only failed"):
        engine.retry_run(chain(feature)[0], story.owner)
