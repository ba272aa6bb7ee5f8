"""launch_pipeline: one call runs the template's pipeline to its stop stage (eager, no broker)."""

from __future__ import annotations

import pytest

from features.models import Artifact, Dependency, Feature, Workspace
from pipeline import engine
from pipeline.models import Run
from skills.models import RecipeStep
from tests.engine_helpers import card, chain


def test_it_runs_the_quick_pipeline_to_done_and_creates_task_cards(story, eager):
    feature = card(story.workspace)
    with eager():
        launched = engine.launch_pipeline(feature, story.owner)
    assert launched.pipeline == ["architecture", "tasks"]

    feature.refresh_from_db()
    assert feature.stage.key == "done"
    assert feature.status == Feature.Status.DONE
    first, second = chain(feature)
    assert (first.stage.key, first.status, first.attempt) == ("architecture", "succeeded", 1)
    assert first.pipeline_next == ["tasks"]
    assert (second.stage.key, second.status, second.parent_run_id) == (
        "tasks",
        "succeeded",
        first.pk,
    )
    assert second.pipeline_next == []
    assert second.triggered_by is None
    assert first.triggered_by == story.owner

    tasks = list(feature.children.order_by("source_index"))
    assert 3 <= len(tasks) <= 6
    assert {t.kind for t in tasks} == {Feature.Kind.TASK}
    assert {t.stage.key for t in tasks} == {"todo"}
    assert all(t.source_run_id == second.pk for t in tasks)
    assert Dependency.objects.filter(feature__in=tasks).exists()
    assert tasks[0].status == Feature.Status.IDLE  # no dependencies
    assert tasks[1].status == Feature.Status.BLOCKED  # waits for the first

    assert set(Artifact.objects.filter(feature=feature).values_list("name", "version")) == {
        ("architecture.md", 1),
        ("tasks.json", 1),
    }
    moves = [
        (t.from_stage and t.from_stage.key, t.to_stage.key, t.actor_run_id)
        for t in feature.transitions.all()
    ]
    assert moves == [
        (None, "idea", None),
        ("idea", "architecture", None),
        ("architecture", "tasks", first.pk),
        ("tasks", "done", second.pk),
    ]


def test_it_halts_at_the_workspace_stop_stage(delivery_story, eager):
    workspace = delivery_story.workspace
    assert workspace.stop_stage.key == "building"
    feature = card(workspace)
    with eager():
        launched = engine.launch_pipeline(feature, delivery_story.owner)
    assert launched.pipeline == ["spec", "spec-review"]
    feature.refresh_from_db()
    assert feature.stage.key == "building"
    assert [r.stage.key for r in chain(feature)] == ["spec", "spec-review"]
    assert feature.children.filter(kind=Feature.Kind.TASK).count() >= 3


def test_it_runs_only_the_current_stage_in_manual_mode(story, eager):
    Workspace.objects.filter(pk=story.workspace.pk).update(
        automation_mode=Workspace.AutomationMode.MANUAL
    )
    feature = card(story.workspace)
    with eager():
        launched = engine.launch_pipeline(feature, story.owner)
    assert launched.pipeline == ["architecture"]
    feature.refresh_from_db()
    assert feature.stage.key == "tasks"
    assert len(chain(feature)) == 1


def test_it_refuses_a_second_launch_while_one_is_active(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        engine.launch_pipeline(feature, story.owner)
        with pytest.raises(engine.AlreadyRunning, match="already has a pipeline running"):
            engine.launch_pipeline(feature, story.teammate)
    assert Run.objects.filter(feature=feature).count() == 1


def test_it_says_when_there_is_nothing_to_run(story):
    feature = card(story.workspace, at="done")
    with pytest.raises(engine.NothingToRun):
        engine.launch_pipeline(feature, story.owner)
    assert not Run.objects.filter(feature=feature).exists()


def test_it_resumes_from_the_failed_stage_instead_of_restarting(product_story, eager):
    workspace = product_story.workspace
    feature = card(workspace, description="Research notes. [offline:score=40]")
    with eager():
        engine.launch_pipeline(feature, product_story.owner)
    feature.refresh_from_db()
    assert feature.stage.key == "validate"
    assert feature.status == Feature.Status.FAILED
    assert "jury_score = 40" in feature.status_note
    failed = chain(feature)[-1]
    assert (failed.stage.key, failed.status, failed.error_kind) == ("validate", "failed", "gate")

    Feature.objects.filter(pk=feature.pk).update(description="Research notes. [offline:score=90]")
    with eager():
        resumed = engine.launch_pipeline(feature, product_story.owner)
    assert resumed.resumed
    assert resumed.pipeline == ["validate", "tickets"]
    assert resumed.run.parent_run_id == failed.pk
    stages_run = [r.stage.key for r in chain(feature)]
    assert stages_run.count("inbox") == 1  # earlier stages were not run again
    assert stages_run[-2:] == ["validate", "tickets"]
    feature.refresh_from_db()
    assert feature.stage.key == "build"


def test_it_resumes_inside_a_recipe_after_the_steps_that_succeeded(delivery_story, eager):
    workspace = delivery_story.workspace
    feature = card(
        workspace,
        at="spec-review",
        description="Spec is written. [offline:fail=permanent@generate-tasks]",
    )
    with eager():
        engine.launch_pipeline(feature, delivery_story.owner)
    failed = chain(feature)[-1]
    assert failed.status == Run.Status.FAILED
    assert failed.error_kind == Run.ErrorKind.PERMANENT
    assert failed.step_index == 1  # review-spec finished before generate-tasks failed
    review = failed.result["steps"][0]

    Feature.objects.filter(pk=feature.pk).update(description="Spec is written.")
    with eager():
        resumed = engine.launch_pipeline(feature, delivery_story.owner)
    run = Run.objects.get(pk=resumed.run.pk)
    assert run.status == Run.Status.SUCCEEDED
    assert run.result["steps"][0] == review
    messages = list(run.logs.values_list("message", flat=True))
    assert not any(m.startswith("Step 1/2") for m in messages)
    assert any(m.startswith("Step 2/2: generate-tasks") for m in messages)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"params": {"tone": "terse"}}, id="a step's settings changed"),
        pytest.param("swap", id="the steps were reordered"),
    ],
)
def test_a_resume_after_the_recipe_changed_reruns_the_steps_that_no_longer_fit(
    delivery_story, eager, edit
):
    """Saved results belong to the step that made them, not to a position in the recipe."""
    workspace = delivery_story.workspace
    feature = card(
        workspace,
        at="spec-review",
        description="Spec is written. [offline:fail=permanent@generate-tasks]",
    )
    with eager():
        engine.launch_pipeline(feature, delivery_story.owner)
    failed = chain(feature)[-1]
    assert failed.step_index == 1
    steps = RecipeStep.objects.filter(
        recipe__stage__key="spec-review", recipe__stage__workspace=workspace
    )
    if edit == "swap":
        first, second = steps.order_by("order")
        RecipeStep.objects.filter(pk=first.pk).update(order=3)
        RecipeStep.objects.filter(pk=second.pk).update(order=1)
    else:
        steps.filter(pk=steps.order_by("order")[0].pk).update(**edit)

    Feature.objects.filter(pk=feature.pk).update(description="Spec is written.")
    with eager():
        resumed = engine.launch_pipeline(feature, delivery_story.owner)

    run = Run.objects.get(pk=resumed.run.pk)
    assert run.status == Run.Status.SUCCEEDED
    messages = list(run.logs.values_list("message", flat=True))
    assert any("0 of 1 saved step result(s) still fit" in m for m in messages)
    assert any(m.startswith("Step 1/2") for m in messages)  # run again, not carried
    assert [s["skill"] for s in run.result["steps"]] == [
        s.skill.slug for s in steps.select_related("skill").order_by("order")
    ]
