"""POST /api/runs/{id} {"action": "rescue"}: requeue a running run now (admins only)."""

from __future__ import annotations

import pytest

from features.models import Membership
from pipeline.models import Run
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card, stage


@pytest.fixture
def running(story):
    return Run.objects.create(
        workspace=story.workspace,
        feature=card(story.workspace, at="architecture"),
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.RUNNING,
        attempt=2,
        worker_id="celery@gone",
    )


def act(client, run, **body):
    return client.post(f"/api/runs/{run.pk}", body, content_type="application/json")


def test_it_lets_the_owner_rescue_a_running_run(story, running, no_enqueue):
    with no_enqueue() as callbacks:
        response = act(api_client(story.owner), running, action="rescue")

    assert response.status_code == 200
    run = Run.objects.get(pk=running.pk)
    assert (run.status, run.attempt, run.worker_id, run.error_message) == (
        "queued",
        2,
        "",
        "Rescued by alice",
    )
    assert response.json()["message"] == f"Run #{run.pk} requeued"
    assert callbacks


def test_it_lets_a_workspace_admin_rescue(story, running, no_enqueue):
    Membership.objects.filter(user=story.teammate).update(role=Membership.Role.ADMIN)

    with no_enqueue():
        response = act(api_client(story.teammate), running, action="rescue")

    assert response.status_code == 200


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_it_refuses_members_who_are_not_admins(story, running, who):
    response = act(api_client(getattr(story, who)), running, action="rescue")

    assert response.status_code == 403
    assert Run.objects.get(pk=running.pk).status == "running"


def test_it_answers_409_for_a_run_that_is_not_running(story, running):
    Run.objects.filter(pk=running.pk).update(status=Run.Status.FAILED)

    response = act(api_client(story.owner), running, action="rescue")

    assert response.status_code == 409
    assert error_of(response)["code"] == "not_running"


def test_it_hides_the_run_from_an_outsider(story, running):
    assert act(api_client(story.outsider), running, action="rescue").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, running):
    assert act(api_client(), running, action="rescue").status_code == 401
