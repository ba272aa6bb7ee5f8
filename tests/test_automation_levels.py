"""What entering a stage does: manual, human_approval, auto_notify, fully_auto."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from skills.models import StageRecipe
from tests.engine_helpers import card, chain, stage


def set_automation(workspace, key: str, level: str) -> None:
    StageRecipe.objects.filter(stage=stage(workspace, key)).update(automation=level)


def test_a_human_approval_stage_waits_for_start(story, eager):
    set_automation(story.workspace, "tasks", StageRecipe.Automation.HUMAN_APPROVAL)
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    first, waiting = chain(feature)
    assert first.status == Run.Status.SUCCEEDED
    assert (waiting.stage.key, waiting.status, waiting.parent_run_id) == (
        "tasks",
        "awaiting_approval",
        first.pk,
    )
    feature.refresh_from_db()
    assert feature.status == Feature.Status.AWAITING_APPROVAL
    assert feature.runs.filter(status__in=Run.ACTIVE_STATUSES).exists()  # locked

    with eager():
        engine.start_run(waiting, story.teammate)
    waiting.refresh_from_db()
    assert waiting.status == Run.Status.SUCCEEDED
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_start_refuses_a_run_that_is_not_waiting(story, eager):
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    with pytest.raises(engine.EngineError, match="not waiting"):
        engine.start_run(chain(feature)[0], story.owner)


def test_an_auto_notify_result_waits_for_accept_before_the_chain_goes_on(story, eager):
    set_automation(story.workspace, "architecture", StageRecipe.Automation.AUTO_NOTIFY)
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    assert (run.status, run.decision) == ("succeeded", "pending")
    feature.refresh_from_db()
    assert feature.stage.key == "architecture"
    assert feature.status == Feature.Status.AWAITING_APPROVAL

    with eager():
        next_run = engine.accept_run(run, story.owner)
    assert next_run is not None
    assert next_run.parent_run_id == run.pk
    run.refresh_from_db()
    assert run.decision == Run.Decision.ACCEPTED
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_rejecting_a_result_ends_the_chain_with_the_reason(story, eager):
    set_automation(story.workspace, "architecture", StageRecipe.Automation.AUTO_NOTIFY)
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    (run,) = chain(feature)
    engine.reject_run(run, story.owner, "Too vague")
    run.refresh_from_db()
    assert (run.decision, run.pipeline_next) == ("rejected", [])
    feature.refresh_from_db()
    assert feature.stage.key == "architecture"
    assert feature.status_note == "Result rejected by alice: Too vague"
    with pytest.raises(engine.EngineError, match="no result waiting"):
        engine.accept_run(run, story.owner)


def test_a_manual_stage_ends_the_chain_before_it(story, eager):
    set_automation(story.workspace, "tasks", StageRecipe.Automation.MANUAL)
    feature = card(story.workspace)
    with eager():
        launched = engine.launch_pipeline(feature, story.owner)
    assert launched.pipeline == ["architecture"]
    feature.refresh_from_db()
    assert feature.stage.key == "tasks"
    assert len(chain(feature)) == 1


def test_moving_a_card_into_a_fully_auto_stage_runs_the_pipeline_from_there(story, eager):
    feature = card(story.workspace)
    with eager():
        engine.move_feature(feature, stage(story.workspace, "architecture"), user=story.owner)
    assert [r.stage.key for r in chain(feature)] == ["architecture", "tasks"]
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_an_unvetted_skill_never_runs_unattended(story, eager):
    from skills.models import RecipeStep, Skill

    tasks_recipe = StageRecipe.objects.get(stage=stage(story.workspace, "tasks"))
    step = RecipeStep.objects.get(recipe=tasks_recipe)
    community = Skill.objects.create(
        workspace=story.workspace,
        slug="community-tasks",
        version=1,
        name="Community tasks",
        trust=Skill.Trust.COMMUNITY,
        output=Skill.Output.TASKS,
        artifact_name="tasks.json",
        prompt_template="{{title}}",
    )
    RecipeStep.objects.filter(pk=step.pk).update(skill=community)
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    first, waiting = chain(feature)
    assert first.status == Run.Status.SUCCEEDED
    assert waiting.status == Run.Status.AWAITING_APPROVAL
    feature.refresh_from_db()
    assert feature.status_note == (
        "Tasks uses unvetted skill(s) community-tasks: a person must start it"
    )
    with eager():
        engine.start_run(waiting, story.owner)
    waiting.refresh_from_db()
    assert waiting.status == Run.Status.SUCCEEDED
