"""POST /api/features/{id}/launch/stop: cancel the card's active run and end its chain."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card


@pytest.fixture
def running(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        engine.launch_pipeline(feature, story.owner)
    return feature


def stop(client, feature):
    return client.post(f"/api/features/{feature.pk}/launch/stop")


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_it_lets_members_stop_a_pipeline(story, running, who, no_enqueue):
    with no_enqueue():
        response = stop(api_client(getattr(story, who)), running)

    assert response.status_code == 200
    assert response.json() == {"stopped": 1}
    run = Run.objects.get(feature=running)
    assert (run.status, run.pipeline_next) == ("cancelled", [])
    assert Feature.objects.get(pk=running.pk).status == "idle"


def test_it_answers_409_when_nothing_runs(story):
    response = stop(api_client(story.owner), card(story.workspace))

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["message"].startswith("Nothing to stop")


def test_it_refuses_a_viewer(story, running):
    assert stop(api_client(story.viewer), running).status_code == 403
    assert Run.objects.get(feature=running).status == "queued"


def test_it_hides_the_card_from_an_outsider(story, running):
    assert stop(api_client(story.outsider), running).status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, running):
    assert stop(api_client(), running).status_code == 401
