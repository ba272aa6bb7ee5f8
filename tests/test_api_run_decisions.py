"""POST /api/runs/{id} {"action": "accept" | "reject"}: decide on a result that waits."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline.models import Run
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card, stage


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
        pipeline_next=["tasks"],
        attempt=1,
    )


def act(client, run, **body):
    return client.post(f"/api/runs/{run.pk}", body, content_type="application/json")


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_lets_members_accept_and_the_chain_goes_on(story, pending, who, no_enqueue):
    with no_enqueue():
        response = act(api_client(getattr(story, who)), pending, action="accept")

    assert response.status_code == 200
    body = response.json()
    next_run = Run.objects.get(parent_run=pending)
    assert body["run"]["decision"] == "accepted"
    assert (body["new_run"]["id"], body["new_run"]["stage"]) == (next_run.pk, "tasks")
    assert Feature.objects.get(pk=pending.feature_id).stage.key == "tasks"


def test_it_lets_a_member_reject_with_a_reason(story, pending):
    response = act(api_client(story.teammate), pending, action="reject", reason="Too vague")

    assert response.status_code == 200
    assert response.json()["run"]["decision"] == "rejected"
    feature = Feature.objects.get(pk=pending.feature_id)
    assert feature.status_note == "Result rejected by bob: Too vague"
    assert feature.stage.key == "architecture"


def test_it_answers_409_when_no_decision_is_pending(story, pending):
    act(api_client(story.owner), pending, action="reject")

    response = act(api_client(story.owner), pending, action="accept")

    assert response.status_code == 409
    assert "no result waiting" in error_of(response)["message"]


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_it_refuses_a_viewer(story, pending, action):
    assert act(api_client(story.viewer), pending, action=action).status_code == 403
    assert Run.objects.get(pk=pending.pk).decision == "pending"


def test_it_hides_the_run_from_an_outsider(story, pending):
    assert act(api_client(story.outsider), pending, action="accept").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, pending):
    assert act(api_client(), pending, action="reject").status_code == 401


def test_it_bounds_the_reason(story, pending):
    response = act(api_client(story.owner), pending, action="reject", reason="x" * 501)

    assert response.status_code == 422
    assert error_of(response)["field"] == "reason"
