"""The workspace settings page: owners and admins set what the engine enforces."""

from __future__ import annotations

from decimal import Decimal

import pytest

from features.models import Membership, Workspace
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card, chain, stage


def url(story):
    return f"/w/{story.workspace.slug}/settings"


def form(story, **overrides):
    data = {
        "automation_mode": "auto_to_stage",
        "stop_stage": str(stage(story.workspace, "done").pk),
        "max_concurrent_runs": "4",
        "monthly_budget_usd": "",
        "default_provider": "offline",
        "default_model": "",
    }
    data.update(overrides)
    return data


def test_the_owner_sees_the_settings_and_every_stage_recipe(story):
    response = story.client_for(story.owner).get(url(story))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="max_concurrent_runs"' in page
    assert f"/w/{story.workspace.slug}/recipes/architecture/" in page


@pytest.mark.parametrize(("who", "status"), [("teammate", 403), ("viewer", 403), ("outsider", 404)])
def test_only_owners_and_admins_reach_it(story, who, status):
    client = story.client_for(getattr(story, who))

    assert client.get(url(story)).status_code == status
    assert client.post(url(story), form(story, max_concurrent_runs="9")).status_code == status
    assert Workspace.objects.get(pk=story.workspace.pk).max_concurrent_runs == 3


def test_an_anonymous_visitor_is_sent_to_log_in(story, client):
    response = client.get(url(story))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_an_admin_saves_every_setting(story):
    Membership.objects.filter(user=story.teammate).update(role=Membership.Role.ADMIN)

    response = story.client_for(story.teammate).post(
        url(story),
        form(
            story,
            automation_mode="manual",
            stop_stage=str(stage(story.workspace, "tasks").pk),
            max_concurrent_runs="2",
            monthly_budget_usd="25.50",
            default_model="claude-x",
        ),
    )

    assert response.status_code == 302
    workspace = Workspace.objects.get(pk=story.workspace.pk)
    assert workspace.stop_stage is not None
    assert (workspace.automation_mode, workspace.stop_stage.key) == ("manual", "tasks")
    assert (workspace.max_concurrent_runs, workspace.monthly_budget_usd) == (2, Decimal("25.50"))
    assert workspace.default_model == "claude-x"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrent_runs", "0"),
        ("monthly_budget_usd", "-1"),
        ("default_provider", "nope"),
        ("automation_mode", "sometimes"),
    ],
)
def test_it_refuses_bad_values(story, field, value):
    response = story.client_for(story.owner).post(url(story), form(story, **{field: value}))

    assert response.status_code == 422
    assert Workspace.objects.get(pk=story.workspace.pk).max_concurrent_runs == 3


def test_the_stop_stage_must_be_this_workspaces(story):
    theirs = Workspace.objects.get(slug="charlies-team").stages.get(key="tasks")

    response = story.client_for(story.owner).post(
        url(story), form(story, stop_stage=str(theirs.pk))
    )

    assert response.status_code == 422


def test_the_saved_run_limit_is_what_the_engine_enforces(story, no_enqueue):
    story.client_for(story.owner).post(url(story), form(story, max_concurrent_runs="1"))
    cards = [card(story.workspace, f"Card {i}") for i in range(2)]

    with no_enqueue():
        runs = [engine.launch_pipeline(c, story.owner).run for c in cards]
        claimed = [engine.claim_run(r.pk, f"w/{i}") for i, r in enumerate(runs)]

    assert [c is not None for c in claimed] == [True, False]
    assert Run.objects.filter(workspace=story.workspace, status="running").count() == 1


def test_the_saved_stop_stage_is_where_launch_stops(story, eager):
    story.client_for(story.owner).post(
        url(story), form(story, stop_stage=str(stage(story.workspace, "tasks").pk))
    )
    feature = card(story.workspace)

    with eager():
        launched = engine.launch_pipeline(feature, story.owner)

    assert launched.pipeline == ["architecture"]


def test_raising_the_budget_resumes_the_runs_it_held(story, eager, no_enqueue):
    spent = card(story.workspace, "Spent")
    with eager():
        engine.launch_pipeline(spent, story.owner)
    Run.objects.filter(feature=spent).update(cost_usd=Decimal("6"))
    client = story.client_for(story.owner)
    client.post(url(story), form(story, monthly_budget_usd="10"))
    waiting = card(story.workspace, "Waiting")
    with no_enqueue():
        run = engine.launch_pipeline(waiting, story.owner).run
        assert engine.claim_run(run.pk, "w/1") is None

    with eager():
        response = client.post(
            url(story), form(story, monthly_budget_usd="50"), HTTP_HX_REQUEST="true"
        )

    assert response.status_code == 200
    assert "1 waiting run(s) resumed" in response["HX-Trigger"]
    assert [r.status for r in chain(waiting)] == ["succeeded", "succeeded"]


def test_the_admin_saves_settings_through_the_same_writer(story, no_enqueue):
    from django.contrib.auth.models import User

    from features.models import Workspace
    from tests.admin_helpers import admin_url, form_data

    root = User.objects.create_superuser("root", "root@example.com", "pw")
    client = story.client_for(root)
    url = admin_url(Workspace, "change", story.workspace.pk)

    refused = client.post(url, form_data(client, url, max_concurrent_runs=1000))
    saved = client.post(url, form_data(client, url, max_concurrent_runs=7))

    assert refused.status_code == 200
    assert "Max concurrent runs is 1 to 100." in refused.content.decode()
    assert saved.status_code == 302
    assert Workspace.objects.get(pk=story.workspace.pk).max_concurrent_runs == 7
