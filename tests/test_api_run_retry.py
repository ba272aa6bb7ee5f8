"""POST /api/runs/{id} {"action": "retry"}: retry a failed run; the chain goes on from it."""

from __future__ import annotations

import pytest

from pipeline import engine
from pipeline.models import Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.engine_helpers import card, chain


@pytest.fixture(autouse=True)
def _fresh_launch_counts():
    reset_launch_limits()


@pytest.fixture
def failed(story, eager):
    feature = card(story.workspace, description="[offline:fail=permanent]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    run = chain(feature)[0]
    assert run.status == "failed"
    return run


def act(client, run, **body):
    return client.post(f"/api/runs/{run.pk}", body, content_type="application/json")


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_lets_members_retry_a_failed_run(story, failed, who, no_enqueue):
    with no_enqueue():
        response = act(api_client(getattr(story, who)), failed, action="retry")

    assert response.status_code == 200
    body = response.json()
    new_run = Run.objects.get(parent_run=failed)
    assert body["action"] == "retry"
    assert body["run"]["id"] == failed.pk
    assert body["run"]["next_run"] == new_run.pk
    assert (body["new_run"]["id"], body["new_run"]["status"]) == (new_run.pk, "queued")


def test_it_answers_409_for_a_run_that_did_not_fail(story, failed, no_enqueue):
    with no_enqueue():
        act(api_client(story.owner), failed, action="retry")
        retried = Run.objects.get(parent_run=failed)

        response = act(api_client(story.owner), retried, action="retry")

    assert response.status_code == 409
    assert "only failed or cancelled runs" in error_of(response)["message"]


def test_it_refuses_a_viewer(story, failed):
    assert act(api_client(story.viewer), failed, action="retry").status_code == 403
    assert not Run.objects.filter(parent_run=failed).exists()


def test_it_hides_the_run_from_an_outsider(story, failed):
    assert act(api_client(story.outsider), failed, action="retry").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, failed):
    assert act(api_client(), failed, action="retry").status_code == 401


def test_it_refuses_an_unknown_action(story, failed):
    response = act(api_client(story.owner), failed, action="explode")

    assert response.status_code == 422
    assert error_of(response)["field"] == "action"
