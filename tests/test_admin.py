"""The operator's console: every page renders, and run actions go through the engine."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.db.models import Model
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries, DjangoCaptureOnCommitCallbacks

from features.actions import do_create_feature
from features.models import (
    Artifact,
    Dependency,
    Feature,
    Membership,
    Stage,
    StageTransition,
    Workspace,
)
from pipeline import engine
from pipeline.models import Run, RunLog, WorkerHeartbeat
from pipeline.runlog import append_log
from skills.models import Gate, RecipeStep, Skill, StageRecipe
from tests.admin_helpers import admin_url, form_data
from tests.conftest import Story


@dataclass
class Seeded:
    feature: Feature
    task: Feature
    run: Run


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", "password")


@pytest.fixture
def console(root: User) -> Client:
    client = Client()
    client.force_login(root)
    return client


def stage(workspace: Workspace, key: str) -> Stage:
    return workspace.stages.get(key=key)


def failed_run(feature: Feature, key: str = "architecture") -> Run:
    return Run.objects.create(
        workspace=feature.workspace,
        feature=feature,
        stage=stage(feature.workspace, key),
        status=Run.Status.FAILED,
        attempt=1,
        error_kind=Run.ErrorKind.PERMANENT,
        error_message="The provider refused the key.",
    )


@pytest.fixture
def seeded(story: Story) -> Seeded:
    """One of everything the admin lists: a card with history, a child task, a run with logs."""
    feature = do_create_feature(story.workspace, title="Checkout page", user=story.owner)
    feature = engine.move_feature(
        feature, stage(story.workspace, "architecture"), user=story.owner, start_automation=False
    )
    task = do_create_feature(
        story.workspace, title="Card form", user=story.owner, kind=Feature.Kind.TASK, parent=feature
    )
    Dependency.objects.create(feature=task, depends_on=feature)
    run = failed_run(feature)
    append_log(run.pk, "Started on worker-a/1")
    append_log(run.pk, "Failed: the provider refused the key", level=RunLog.Level.ERROR)
    Artifact.objects.create(feature=feature, run=run, name="architecture.md", content="# A")
    WorkerHeartbeat.objects.create(worker_id="worker-a/1", hostname="box", pid=42)
    return Seeded(feature=feature, task=task, run=run)


ALL_MODELS: list[type[Model]] = [
    Workspace,
    Membership,
    Stage,
    Feature,
    Dependency,
    StageTransition,
    Artifact,
    Skill,
    StageRecipe,
    RecipeStep,
    Gate,
    Run,
    RunLog,
    WorkerHeartbeat,
]


# --- Every page renders -------------------------------------------------------------------------


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_it_renders_the_changelist_and_a_change_page(
    console: Client, seeded: Seeded, model: type[Model]
) -> None:
    assert console.get(admin_url(model, "changelist")).status_code == 200
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the fixture seeds no {model.__name__}"
    assert console.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_it_searches_every_changelist_that_has_a_search_box(
    console: Client, seeded: Seeded, model: type[Model]
) -> None:
    response = console.get(admin_url(model, "changelist"), {"q": "checkout"})
    assert response.status_code == 200


@pytest.mark.parametrize("model", [Run, RunLog, WorkerHeartbeat, StageTransition])
def test_it_refuses_to_add_rows_only_the_product_writes(
    console: Client, seeded: Seeded, model: type[Model]
) -> None:
    assert console.get(admin_url(model, "add")).status_code == 403


@pytest.mark.parametrize("model", [Workspace, Feature, Skill, StageRecipe, Membership])
def test_it_renders_the_add_page(console: Client, seeded: Seeded, model: type[Model]) -> None:
    assert console.get(admin_url(model, "add")).status_code == 200


def test_it_shows_the_run_log_in_order_and_whether_workers_are_alive(
    console: Client, seeded: Seeded
) -> None:
    page = console.get(admin_url(Run, "change", seeded.run.pk)).content.decode()
    assert page.index("Started on worker-a/1") < page.index("Failed: the provider refused")
    WorkerHeartbeat.objects.create(
        worker_id="worker-b/1", hostname="box", pid=43, stopped_at=timezone.now()
    )
    workers = console.get(admin_url(WorkerHeartbeat, "changelist")).content.decode()
    assert workers.count('alt="True"') == 1
    assert workers.count('alt="False"') == 1


def test_the_run_list_takes_a_constant_number_of_queries(
    console: Client, seeded: Seeded, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    for _ in range(20):
        other = do_create_feature(seeded.feature.workspace, title="More", user=None)
        failed_run(other)
    with django_assert_max_num_queries(12):
        assert console.get(admin_url(Run, "changelist")).status_code == 200


# --- Run state is the engine's -----------------------------------------------------------------


def test_it_ignores_run_state_posted_in_the_change_form(console: Client, seeded: Seeded) -> None:
    url = admin_url(Run, "change", seeded.run.pk)
    data = form_data(console, url, status="succeeded", attempt="0", max_attempts="5")
    assert console.post(url, data).status_code == 302
    run = Run.objects.get(pk=seeded.run.pk)
    assert (run.status, run.attempt, run.max_attempts) == (Run.Status.FAILED, 1, 5)


def act(client: Client, action: str, *runs: Run) -> list[str]:
    response = client.post(
        admin_url(Run, "changelist"),
        {"action": action, "_selected_action": [r.pk for r in runs]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_retry_action_continues_a_failed_run_with_a_new_queued_run(
    console: Client,
    seeded: Seeded,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        notes = act(console, "retry_runs", seeded.run)
    retried = Run.objects.get(parent_run=seeded.run)
    assert retried.status == Run.Status.QUEUED
    assert retried.triggered_by is not None
    assert retried.triggered_by.username == "root"
    assert notes == [f"Retried 1 run(s): #{seeded.run.pk} → #{retried.pk}."]


def test_the_retry_action_reports_each_refusal_and_still_retries_the_rest(
    console: Client,
    seeded: Seeded,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    other = do_create_feature(seeded.feature.workspace, title="Receipts", user=None)
    retriable = failed_run(other)
    running = Run.objects.create(
        workspace=seeded.task.workspace,
        feature=seeded.task,
        stage=seeded.task.stage,
        status=Run.Status.RUNNING,
        attempt=1,
    )
    with django_capture_on_commit_callbacks(execute=False):
        notes = act(console, "retry_runs", retriable, running)
    assert Run.objects.filter(parent_run=retriable, status=Run.Status.QUEUED).exists()
    assert f"Run #{running.pk} is running; only failed or cancelled runs can be retried." in notes
    assert any(n.startswith("Retried 1 run(s)") for n in notes)


def test_the_cancel_action_stops_the_pipeline_of_a_queued_run(
    console: Client,
    seeded: Seeded,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    queued = Run.objects.create(
        workspace=seeded.task.workspace,
        feature=seeded.task,
        stage=seeded.task.stage,
        status=Run.Status.QUEUED,
    )
    with django_capture_on_commit_callbacks(execute=False):
        notes = act(console, "cancel_runs", queued, seeded.run)
    queued.refresh_from_db()
    assert queued.status == Run.Status.CANCELLED
    assert queued.error_message == "Stopped by root."
    assert f"Run #{seeded.run.pk} is already failed; nothing of it to stop." in notes
    assert "Stopped the pipeline of 1 card(s); 1 run(s) cancelled or rejected." in notes


def test_the_rescue_action_requeues_a_running_run(
    console: Client,
    seeded: Seeded,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    running = Run.objects.create(
        workspace=seeded.task.workspace,
        feature=seeded.task,
        stage=seeded.task.stage,
        status=Run.Status.RUNNING,
        attempt=1,
        worker_id="worker-a/1",
    )
    with django_capture_on_commit_callbacks(execute=False):
        notes = act(console, "rescue_runs", running, seeded.run)
    running.refresh_from_db()
    assert (running.status, running.worker_id, running.attempt) == (Run.Status.QUEUED, "", 1)
    assert running.error_message == "Rescued by root"
    assert f"Requeued 1 run(s): #{running.pk}." in notes
    assert any(n.startswith(f"Run #{seeded.run.pk} is not running") for n in notes)


# --- Writes that matter go through the actions ------------------------------------------------


def test_adding_a_workspace_builds_its_template_and_makes_the_operator_owner(
    console: Client, root: User
) -> None:
    response = console.post(
        admin_url(Workspace, "add"),
        {
            "name": "Ops",
            "slug": "ops",
            "template": "quick",
            "automation_mode": Workspace.AutomationMode.MANUAL,
            "max_concurrent_runs": "2",
            "monthly_budget_usd": "",
            "default_provider": "offline",
            "default_model": "",
        },
    )
    assert response.status_code == 302
    workspace = Workspace.objects.get(slug="ops")
    assert workspace.automation_mode == Workspace.AutomationMode.MANUAL
    assert workspace.max_concurrent_runs == 2
    assert workspace.stop_stage is not None
    assert workspace.stages.filter(key="architecture", recipe__isnull=False).exists()
    assert workspace.memberships.get().user == root


def test_adding_a_card_records_its_creation(console: Client, story: Story) -> None:
    response = console.post(
        admin_url(Feature, "add"),
        {"workspace": story.workspace.pk, "title": "Gift cards", "kind": "feature", "stage": ""},
    )
    assert response.status_code == 302
    feature = Feature.objects.get(title="Gift cards")
    assert feature.stage.key == "idea"
    assert feature.transitions.get().note == "Created"


def test_moving_a_card_records_a_transition_without_starting_automation(
    console: Client, seeded: Seeded
) -> None:
    feature = seeded.feature
    target = stage(feature.workspace, "tasks")
    url = admin_url(Feature, "change", feature.pk)
    data = form_data(console, url, title="Checkout, renamed", stage=target.pk)
    assert console.post(url, data).status_code == 302
    moved = Feature.objects.get(pk=feature.pk)
    assert (moved.title, moved.stage_id) == ("Checkout, renamed", target.pk)
    assert moved.version == feature.version + 2  # the edit and the move each bump the lock
    last = moved.transitions.order_by("id").last()
    assert last is not None
    assert last.note == "Moved in the admin"
    assert not Run.objects.filter(feature=feature, stage=target).exists()


def test_it_refuses_a_stage_of_another_workspace(
    console: Client, seeded: Seeded, story: Story
) -> None:
    elsewhere = Stage.objects.exclude(workspace=story.workspace).first()
    assert elsewhere is not None
    url = admin_url(Feature, "change", seeded.feature.pk)
    response = console.post(url, form_data(console, url, stage=elsewhere.pk))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Feature.objects.get(pk=seeded.feature.pk).stage_id == seeded.feature.stage_id


def test_it_refuses_to_move_a_card_that_has_an_active_run(console: Client, seeded: Seeded) -> None:
    Run.objects.filter(pk=seeded.run.pk).update(status=Run.Status.RUNNING)
    url = admin_url(Feature, "change", seeded.feature.pk)
    target = stage(seeded.feature.workspace, "tasks")
    response = console.post(url, form_data(console, url, stage=target.pk))
    assert response.status_code == 200
    assert "stop its pipeline before moving it" in response.content.decode()
    assert Feature.objects.get(pk=seeded.feature.pk).stage_id == seeded.feature.stage_id


def test_vetting_a_skill_records_who_vetted_it(console: Client, root: User) -> None:
    skill = Skill.objects.create(slug="draft", name="Draft", trust=Skill.Trust.COMMUNITY)
    url = admin_url(Skill, "change", skill.pk)
    assert console.post(url, form_data(console, url, trust="vetted")).status_code == 302
    skill.refresh_from_db()
    assert (skill.trust, skill.vetted_by) == (Skill.Trust.VETTED, root)
    assert skill.vetted_at is not None


def test_a_fully_automatic_recipe_refuses_an_unvetted_skill(console: Client, story: Story) -> None:
    recipe = StageRecipe.objects.get(stage=stage(story.workspace, "architecture"))
    assert recipe.automation == StageRecipe.Automation.FULLY_AUTO
    step = recipe.steps.get()
    unvetted = Skill.objects.create(slug="draft", name="Draft", trust=Skill.Trust.COMMUNITY)
    url = admin_url(StageRecipe, "change", recipe.pk)
    data = form_data(console, url, **{"steps-0-skill": unvetted.pk})

    refused = console.post(url, data)
    assert refused.status_code == 200
    assert "may only use vetted skills" in refused.content.decode()
    assert RecipeStep.objects.get(pk=step.pk).skill_id != unvetted.pk

    data["automation"] = StageRecipe.Automation.AUTO_NOTIFY
    assert console.post(url, data).status_code == 302
    # Saved through the recipe writer: the steps are the recipe's new ones.
    assert recipe.steps.get().skill_id == unvetted.pk
