"""POST /api/features/{id}/launch: the same launch_pipeline the board and the CLI use."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.engine_helpers import card, chain


@pytest.fixture(autouse=True)
def _fresh_launch_counts():
    reset_launch_limits()


def launch(client, feature):
    return client.post(f"/api/features/{feature.pk}/launch")


def test_it_lets_the_owner_launch_and_answers_the_run_and_its_pipeline(story, no_enqueue):
    feature = card(story.workspace)

    with no_enqueue() as callbacks:
        response = launch(api_client(story.owner), feature)

    assert response.status_code == 201
    run = Run.objects.get(feature=feature)
    assert response.json() == {
        "run_id": run.pk,
        "pipeline": ["architecture", "tasks"],
        "resumed": False,
    }
    assert run.triggered_by == story.owner
    assert callbacks


def test_it_lets_a_teammate_launch(story, no_enqueue):
    with no_enqueue():
        response = launch(api_client(story.teammate), card(story.workspace))

    assert response.status_code == 201


def test_it_runs_the_whole_pipeline(story, eager):
    feature = card(story.workspace)

    with eager():
        launch(api_client(story.owner), feature)

    assert [(r.stage.key, r.status) for r in chain(feature)] == [
        ("architecture", "succeeded"),
        ("tasks", "succeeded"),
    ]


def test_it_answers_409_when_the_pipeline_is_already_running(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        launch(api_client(story.owner), feature)

        response = launch(api_client(story.teammate), feature)

    assert response.status_code == 409
    assert error_of(response)["code"] == "already_running"
    assert Run.objects.filter(feature=feature).count() == 1


def test_it_answers_409_when_there_is_nothing_to_run(story):
    response = launch(api_client(story.owner), card(story.workspace, at="done"))

    assert response.status_code == 409
    assert error_of(response)["code"] == "nothing_to_run"


def test_it_resumes_from_the_failed_stage(story, eager):
    feature = card(story.workspace, description="[offline:fail=permanent@generate-tasks]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    Feature.objects.filter(pk=feature.pk).update(description="fixed")

    with eager():
        response = launch(api_client(story.owner), feature)

    assert response.status_code == 201
    assert response.json()["resumed"] is True
    assert response.json()["pipeline"] == ["tasks"]


def test_it_refuses_a_viewer(story):
    feature = card(story.workspace)

    response = launch(api_client(story.viewer), feature)

    assert response.status_code == 403
    assert not Run.objects.filter(feature=feature).exists()


def test_it_hides_the_card_from_an_outsider(story):
    assert launch(api_client(story.outsider), card(story.workspace)).status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story):
    assert launch(api_client(), card(story.workspace)).status_code == 401
