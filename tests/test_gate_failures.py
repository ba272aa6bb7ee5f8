"""A failed gate applies the recipe's on-fail behaviour and says why on the card."""

from __future__ import annotations

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from skills.models import StageRecipe
from tests.engine_helpers import card, chain, stage

MISSING_RISKS = "Plan. [offline:omit=Risks]"


def set_on_fail(workspace, key: str, on_fail: str) -> None:
    StageRecipe.objects.filter(stage=stage(workspace, key)).update(on_fail=on_fail)


def test_stay_keeps_the_card_and_shows_the_missing_section(story, eager):
    feature = card(story.workspace, description=MISSING_RISKS)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    assert (run.status, run.error_kind) == ("failed", "gate")
    assert "missing section(s): Risks" in run.error_message
    assert run.result["gates"][0]["passed"] is False
    feature.refresh_from_db()
    assert feature.stage.key == "architecture"
    assert feature.status == Feature.Status.FAILED
    assert feature.status_note.startswith("Gate failed: architecture.md is missing")
    # The document is kept so people can see what was produced.
    assert feature.artifacts.filter(name="architecture.md").exists()


def test_revert_moves_the_card_back(story, eager):
    set_on_fail(story.workspace, "architecture", StageRecipe.OnFail.REVERT)
    feature = card(story.workspace, description=MISSING_RISKS)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    feature.refresh_from_db()
    assert feature.stage.key == "idea"
    last = feature.transitions.last()
    assert last is not None
    assert last.note.startswith("Reverted:")
    assert last.actor_run_id == chain(feature)[0].pk


def test_create_questions_opens_a_linked_questions_card(story, eager):
    set_on_fail(story.workspace, "architecture", StageRecipe.OnFail.CREATE_QUESTIONS)
    feature = card(story.workspace, description=MISSING_RISKS)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    question = feature.children.get()
    assert question.title == f"Questions: {feature.title}"
    assert "Risks" in question.description


def test_review_required_lets_a_person_accept_past_the_gate(story, eager):
    set_on_fail(story.workspace, "architecture", StageRecipe.OnFail.REVIEW_REQUIRED)
    feature = card(story.workspace, description=MISSING_RISKS)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    assert (run.status, run.decision) == (Run.Status.SUCCEEDED, Run.Decision.PENDING)
    feature.refresh_from_db()
    assert feature.status == Feature.Status.BLOCKED
    assert feature.status_note.startswith("Review required:")
    with eager():
        engine.accept_run(run, story.owner)
    feature.refresh_from_db()
    assert feature.stage.key == "done"
