"""POST /w/<slug>/runs/<pk>/rescue and /cancel: operator actions on one run, admins only."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from features.models import Feature, Membership
from pipeline.models import Run, RunLog
from tests.factories import FeatureFactory, add_member

Status = Run.Status
HTMX = {"HX-Request": "true"}


def _run(workspace, status: str, attempt: int = 1, **kwargs) -> Run:
    feature = FeatureFactory.create(workspace=workspace)
    return Run.objects.create(
        workspace=workspace,
        feature=feature,
        stage=workspace.stages.get(key="architecture"),
        status=status,
        attempt=attempt,
        **kwargs,
    )


def _url(action: str, run: Run, slug: str | None = None) -> str:
    return reverse(f"pipeline:{action}", args=[slug or run.workspace.slug, run.pk])


def _toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["toast"]


def test_it_lets_an_admin_rescue_a_running_run(story, django_capture_on_commit_callbacks):
    run = _run(story.workspace, Status.RUNNING, attempt=2, worker_id="celery@dead")

    # Callbacks are recorded, not run: no Celery message goes out.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = story.client_for(story.owner).post(_url("rescue", run), headers=HTMX)

    run.refresh_from_db()
    assert response.status_code == 200
    assert run.status == Status.QUEUED
    assert run.worker_id == ""
    assert run.attempt == 2  # the claim increments it; a rescue keeps the fencing token
    assert run.error_kind == Run.ErrorKind.LOST
    assert run.error_message == "Rescued by alice"
    assert Feature.objects.get(pk=run.feature_id).status == Feature.Status.QUEUED
    assert RunLog.objects.filter(run=run, message__startswith="Rescued by alice").exists()
    assert callbacks  # the enqueue waits for commit
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="run-{run.pk}"')
    assert "Queued" in body
    assert _toast(response) == {"message": f"Run #{run.pk} requeued", "level": "success"}


def test_it_lets_a_workspace_admin_who_is_not_the_owner_rescue(
    story, django_capture_on_commit_callbacks
):
    admin = story.teammate
    Membership.objects.filter(user=admin, workspace=story.workspace).update(
        role=Membership.Role.ADMIN
    )
    run = _run(story.workspace, Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=False):
        response = story.client_for(admin).post(_url("rescue", run), headers=HTMX)

    assert response.status_code == 200
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_it_forbids_rescue_to_members_who_are_not_admins(story, who):
    run = _run(story.workspace, Status.RUNNING)

    response = story.client_for(getattr(story, who)).post(_url("rescue", run), headers=HTMX)

    assert response.status_code == 403
    assert Run.objects.get(pk=run.pk).status == Status.RUNNING


def test_it_is_not_found_for_an_outsider(story):
    run = _run(story.workspace, Status.RUNNING)

    response = story.client_for(story.outsider).post(_url("rescue", run), headers=HTMX)

    assert response.status_code == 404
    assert Run.objects.get(pk=run.pk).status == Status.RUNNING


def test_it_never_rescues_a_run_of_another_workspace(story):
    # Charlie's run, through the URL of Alice's workspace where Alice is owner.
    theirs = _run(story.outsider.memberships.get().workspace, Status.RUNNING)

    response = story.client_for(story.owner).post(
        _url("rescue", theirs, slug=story.workspace.slug), headers=HTMX
    )

    assert response.status_code == 404
    assert Run.objects.get(pk=theirs.pk).status == Status.RUNNING


def test_it_never_acts_through_a_workspace_where_the_user_is_admin(story):
    # Alice admins Charlie's workspace too: the run still must be named under its own workspace.
    charlies = story.outsider.memberships.get().workspace
    add_member(charlies, story.owner, Membership.Role.ADMIN)
    theirs = _run(charlies, Status.RUNNING)

    response = story.client_for(story.owner).post(
        _url("cancel", theirs, slug=story.workspace.slug), headers=HTMX
    )

    assert response.status_code == 404
    assert Run.objects.get(pk=theirs.pk).status == Status.RUNNING


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.QUEUED])
def test_it_refuses_to_rescue_a_run_that_is_not_running(story, status):
    run = _run(story.workspace, status)

    response = story.client_for(story.owner).post(_url("rescue", run), headers=HTMX)

    assert response.status_code == 409
    assert Run.objects.get(pk=run.pk).status == status
    assert _toast(response)["level"] == "error"
    assert "only running runs can be rescued" in _toast(response)["message"]
    # The refusal still redraws the row, which was probably out of date.
    assert response.content.decode().lstrip().startswith(f'<tr id="run-{run.pk}"')


def test_it_says_so_when_the_engine_declines_the_rescue(story, monkeypatch):
    run = _run(story.workspace, Status.RUNNING)
    # The run moved on between the page read and the conditional update.
    monkeypatch.setattr("pipeline.engine.rescue_run", lambda run, user: False)

    response = story.client_for(story.owner).post(_url("rescue", run), headers=HTMX)

    assert response.status_code == 409
    assert _toast(response) == {
        "message": f"Run #{run.pk} changed meanwhile: nothing to rescue.",
        "level": "error",
    }


@pytest.mark.parametrize("status", [Status.RUNNING, Status.QUEUED, Status.AWAITING_APPROVAL])
def test_it_lets_an_admin_cancel_an_active_run(story, status, django_capture_on_commit_callbacks):
    run = _run(story.workspace, status, pipeline_next=["tasks"])

    with django_capture_on_commit_callbacks(execute=False):
        response = story.client_for(story.owner).post(_url("cancel", run), headers=HTMX)

    run.refresh_from_db()
    assert response.status_code == 200
    assert run.status == Status.CANCELLED
    assert run.finished_at is not None
    assert run.pipeline_next == []
    assert run.error_message == "Stopped by alice."
    assert Feature.objects.get(pk=run.feature_id).status == Feature.Status.IDLE
    assert "Cancelled" in response.content.decode()
    assert _toast(response) == {"message": f"Run #{run.pk} cancelled", "level": "success"}


def test_it_forbids_cancel_to_a_member(story):
    run = _run(story.workspace, Status.QUEUED)

    response = story.client_for(story.teammate).post(_url("cancel", run), headers=HTMX)

    assert response.status_code == 403
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_it_refuses_to_cancel_a_finished_run(story):
    run = _run(story.workspace, Status.SUCCEEDED)

    response = story.client_for(story.owner).post(_url("cancel", run), headers=HTMX)

    assert response.status_code == 409
    assert Run.objects.get(pk=run.pk).status == Status.SUCCEEDED
    assert "nothing to cancel" in _toast(response)["message"]


def test_it_only_accepts_post(story):
    run = _run(story.workspace, Status.RUNNING)

    response = story.client_for(story.owner).get(_url("rescue", run))

    assert response.status_code == 405


def test_it_keeps_csrf_protection_on(story):
    run = _run(story.workspace, Status.RUNNING)
    client = Client(enforce_csrf_checks=True)
    client.force_login(story.owner)

    response = client.post(_url("rescue", run), headers=HTMX)

    assert response.status_code == 403
    assert Run.objects.get(pk=run.pk).status == Status.RUNNING


def test_it_sends_anonymous_users_to_login(story):
    run = _run(story.workspace, Status.RUNNING)

    response = Client().post(_url("cancel", run))

    assert response.status_code == 302
    assert Run.objects.get(pk=run.pk).status == Status.RUNNING
