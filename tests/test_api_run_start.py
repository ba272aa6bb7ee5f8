"""POST /api/runs/{id} {"action": "start"}: start a run that waits for a person."""

from __future__ import annotations

import pytest

from pipeline.models import Run
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card, stage


@pytest.fixture
def waiting(story):
    feature = card(story.workspace, at="architecture")
    return Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.AWAITING_APPROVAL,
        pipeline_next=["tasks"],
    )


def act(client, run, **body):
    return client.post(f"/api/runs/{run.pk}", body, content_type="application/json")


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_lets_members_start_a_waiting_run(story, waiting, who, no_enqueue):
    with no_enqueue() as callbacks:
        response = act(api_client(getattr(story, who)), waiting, action="start")

    assert response.status_code == 200
    assert response.json()["run"]["status"] == "queued"
    assert Run.objects.get(pk=waiting.pk).triggered_by == getattr(story, who)
    assert callbacks


def test_it_answers_409_when_the_run_does_not_wait(story, waiting, no_enqueue):
    with no_enqueue():
        act(api_client(story.owner), waiting, action="start")

    response = act(api_client(story.owner), waiting, action="start")

    assert response.status_code == 409
    assert error_of(response)["message"] == f"Run #{waiting.pk} is not waiting for approval."


def test_it_refuses_a_viewer(story, waiting):
    assert act(api_client(story.viewer), waiting, action="start").status_code == 403
    assert Run.objects.get(pk=waiting.pk).status == "awaiting_approval"


def test_it_hides_the_run_from_an_outsider(story, waiting):
    assert act(api_client(story.outsider), waiting, action="start").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, waiting):
    assert act(api_client(), waiting, action="start").status_code == 401
