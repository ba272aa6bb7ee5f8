"""Each audited action, through its real door, writes exactly one entry with who, what and the
change; a refused action writes none."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from audit.models import AuditEntry
from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from skills.models import StageRecipe
from tests.api_helpers import api_client, reset_launch_limits
from tests.engine_helpers import card, chain, stage
from tests.skill_helpers import own_skill


@pytest.fixture(autouse=True)
def _fresh_launch_counts():
    reset_launch_limits()


def only_entry(**filters) -> AuditEntry:
    (entry,) = AuditEntry.objects.filter(**filters)
    return entry


def card_action(client, feature, action, **data):
    return client.post(f"/features/{feature.pk}/{action}", data, HTTP_HX_REQUEST="true")


def test_a_launch_on_the_board_is_logged_with_its_stage_and_pipeline(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        assert card_action(story.client_for(story.teammate), feature, "launch").status_code == 200

    entry = only_entry()
    (run,) = chain(feature)
    assert (entry.action, entry.actor, entry.source) == ("run.launch", story.teammate, "web")
    assert (entry.target_type, entry.target_id) == ("feature", str(feature.pk))
    assert entry.changes == {
        "run": run.pk,
        "stage": "architecture",
        "pipeline": ["architecture", "tasks"],
        "resumed": False,
    }


def test_a_refused_launch_logs_nothing(story, no_enqueue):
    feature = card(story.workspace)
    client = story.client_for(story.teammate)
    with no_enqueue():
        card_action(client, feature, "launch")
        assert card_action(client, feature, "launch").status_code == 409
    assert AuditEntry.objects.count() == 1
    assert card_action(story.client_for(story.viewer), feature, "launch").status_code == 403
    assert AuditEntry.objects.count() == 1


def test_a_stop_is_logged_with_the_runs_it_cancelled(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        engine.launch_pipeline(feature, None)  # the system's launch: not a person's, no entry
        assert card_action(story.client_for(story.owner), feature, "stop").status_code == 200

    entry = only_entry()
    (run,) = chain(feature)
    assert (entry.action, entry.actor_label) == ("run.stop", "alice")
    assert entry.changes == {"runs": [run.pk], "waiting_results_rejected": 0}


def test_a_retry_through_the_api_is_logged_as_api(story, eager, no_enqueue):
    feature = card(story.workspace, description="[offline:fail=permanent]")
    with eager():
        engine.launch_pipeline(feature, None)
    (failed,) = chain(feature)
    assert failed.status == "failed"

    with no_enqueue():
        response = api_client(story.teammate).post(
            f"/api/runs/{failed.pk}", {"action": "retry"}, content_type="application/json"
        )
    assert response.status_code == 200

    entry = only_entry()
    new_run = Run.objects.get(parent_run=failed)
    assert (entry.action, entry.actor, entry.source) == ("run.retry", story.teammate, "api")
    assert (entry.target_type, entry.target_id) == ("run", str(failed.pk))
    assert entry.changes == {"new_run": new_run.pk, "stage": "architecture"}


@pytest.fixture
def pending(story):
    feature = card(story.workspace, at="architecture")
    Feature.objects.filter(pk=feature.pk).update(status=Feature.Status.AWAITING_APPROVAL)
    return Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.SUCCEEDED,
        decision=Run.Decision.PENDING,
        pipeline_next=[],
        attempt=1,
    )


@pytest.mark.parametrize(("action", "decision"), [("accept", "accept"), ("reject", "reject")])
def test_a_decision_is_logged(story, pending, action, decision, no_enqueue):
    with no_enqueue():
        response = api_client(story.owner).post(
            f"/api/runs/{pending.pk}", {"action": action}, content_type="application/json"
        )
    assert response.status_code == 200

    entry = only_entry()
    assert (entry.action, entry.actor, entry.changes) == (
        "run.decision",
        story.owner,
        {"decision": decision, "stage": "architecture"},
    )
    assert entry.target_id == str(pending.pk)


def test_starting_a_waiting_run_is_a_logged_decision(story, no_enqueue):
    feature = card(story.workspace, at="architecture")
    waiting = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.AWAITING_APPROVAL,
    )
    with no_enqueue():
        assert card_action(story.client_for(story.teammate), feature, "start").status_code == 200

    entry = only_entry()
    assert (entry.action, entry.changes) == (
        "run.decision",
        {"decision": "start", "stage": "architecture"},
    )
    assert entry.target_id == str(waiting.pk)


def test_a_move_on_the_board_is_logged_with_the_stages(story, no_enqueue):
    feature = card(story.workspace)
    done = stage(story.workspace, "done")
    with no_enqueue():
        response = story.client_for(story.teammate).post(
            f"/features/{feature.pk}/move", {"stage": done.pk}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200

    entry = only_entry(action="card.move")
    assert entry.actor == story.teammate
    assert entry.changes["stage"] == {"before": "idea", "after": "done"}


def test_a_cli_launch_under_as_is_logged_as_cli(story, no_enqueue, monkeypatch):
    monkeypatch.delenv("RUNWAY_CLI_USER", raising=False)
    feature = card(story.workspace)
    with no_enqueue():
        call_command("pipeline", "--as", "bob", "launch", str(feature.pk), stdout=io.StringIO())

    entry = only_entry()
    assert (entry.action, entry.actor, entry.source) == ("run.launch", story.teammate, "cli")


def test_a_cli_launch_without_as_is_the_operator(story, no_enqueue, monkeypatch):
    monkeypatch.delenv("RUNWAY_CLI_USER", raising=False)
    feature = card(story.workspace)
    with no_enqueue():
        call_command("pipeline", "launch", str(feature.pk), stdout=io.StringIO())

    entry = only_entry()
    assert (entry.actor, entry.actor_label, entry.source) == (None, "operator (CLI)", "cli")


def test_a_recipe_change_is_logged_with_before_and_after(story):
    recipe = StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")
    before = recipe.automation
    response = api_client(story.owner).patch(
        f"/api/recipes/{recipe.pk}", {"automation": "auto_notify"}, content_type="application/json"
    )
    assert response.status_code == 200

    entry = only_entry()
    assert (entry.action, entry.actor, entry.source) == ("recipe.change", story.owner, "api")
    assert entry.changes == {"automation": {"before": before, "after": "auto_notify"}}


def test_vetting_a_skill_is_logged(story):
    skill = own_skill(story.workspace)
    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/skills/{skill.pk}/vet"
    )
    assert response.status_code == 302

    entry = only_entry()
    assert (entry.action, entry.target_type) == ("skill.vet", "skill")
    assert entry.changes == {"trust": {"before": skill.trust, "after": "vetted"}}


def _settings_form(story, **overrides):
    return {
        "automation_mode": story.workspace.automation_mode,
        "stop_stage": str(story.workspace.stop_stage_id),
        "max_concurrent_runs": str(story.workspace.max_concurrent_runs),
        "monthly_budget_usd": "",
        "default_provider": story.workspace.default_provider,
        "default_model": "",
    } | overrides


def test_a_budget_change_and_a_settings_change_are_separate_entries(story):
    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/settings",
        _settings_form(story, monthly_budget_usd="25.00", max_concurrent_runs="5"),
    )
    assert response.status_code == 302

    budget = only_entry(action="budget.change")
    assert budget.changes == {"monthly_budget_usd": {"before": None, "after": "25.00"}}
    limits = only_entry(action="settings.change")
    assert limits.changes == {"max_concurrent_runs": {"before": 3, "after": 5}}
    assert {budget.actor, limits.actor} == {story.owner}


def test_a_refused_settings_change_logs_nothing(story):
    response = story.client_for(story.teammate).post(
        f"/w/{story.workspace.slug}/settings", _settings_form(story, monthly_budget_usd="9")
    )
    assert response.status_code == 403
    assert not AuditEntry.objects.exists()


def test_a_new_prompt_is_a_logged_recipe_change(story):
    recipe = StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")
    step = recipe.steps.select_related("skill").order_by("order")[0]
    old = step.skill.prompt_template
    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/recipes/architecture/prompts/{step.skill.pk}",
        {"prompt": old + "\nBe brief."},
    )
    assert response.status_code == 302

    entry = only_entry()
    assert (entry.action, entry.target_type) == ("recipe.change", "skill")
    assert entry.changes == {"prompt": {"before": old, "after": old + "\nBe brief."}}
    assert entry.workspace_id == story.workspace.pk


def test_a_tree_launch_and_its_batch_stop_are_logged(product_story, eager, no_enqueue):
    from tests.tree_helpers import epic_with_stories

    parent = epic_with_stories(product_story, eager)
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    client = product_story.client_for(product_story.teammate)
    with no_enqueue():
        started = engine.launch_tree(parent, product_story.teammate)
        response = client.post(
            f"/w/{product_story.workspace.slug}/batches/{started.batch.pk}/stop",
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200

    launch, stop = AuditEntry.objects.exclude(pk__in=before).order_by("id")
    assert (launch.action, launch.target_id) == ("run.launch", str(parent.pk))
    assert launch.changes["how"] == "launch_tree"
    assert launch.changes["batch"] == started.batch.pk
    assert sorted(launch.changes["runs"]) == sorted(r.pk for r in started.runs)
    assert (stop.action, stop.target_type, stop.target_id) == (
        "run.stop",
        "batch",
        str(started.batch.pk),
    )
    assert stop.changes["stopped"] == len(started.runs)
