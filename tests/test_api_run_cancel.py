"""POST /api/runs/{id} {"action": "cancel"}: stop the pipeline the run belongs to."""

from __future__ import annotations

import pytest

from pipeline import engine
from pipeline.models import Run
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card


@pytest.fixture
def queued(story, no_enqueue):
    with no_enqueue():
        return engine.launch_pipeline(card(story.workspace), story.owner).run


def act(client, run, **body):
    return client.post(f"/api/runs/{run.pk}", body, content_type="application/json")


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_lets_members_cancel_an_active_run(story, queued, who, no_enqueue):
    with no_enqueue():
        response = act(api_client(getattr(story, who)), queued, action="cancel")

    assert response.status_code == 200
    assert response.json()["run"]["status"] == "cancelled"
    assert response.json()["new_run"] is None
    assert Run.objects.get(pk=queued.pk).error_message == f"Stopped by {getattr(story, who)}."


def test_it_answers_409_for_a_finished_run(story, queued, no_enqueue):
    with no_enqueue():
        act(api_client(story.owner), queued, action="cancel")

    response = act(api_client(story.owner), queued, action="cancel")

    assert response.status_code == 409
    assert error_of(response)["code"] == "not_active"


def test_it_refuses_a_viewer(story, queued):
    assert act(api_client(story.viewer), queued, action="cancel").status_code == 403
    assert Run.objects.get(pk=queued.pk).status == "queued"


def test_it_hides_the_run_from_an_outsider(story, queued):
    assert act(api_client(story.outsider), queued, action="cancel").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, queued):
    assert act(api_client(), queued, action="cancel").status_code == 401
