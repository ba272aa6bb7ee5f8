"""POST /api/features: create a card, optionally launching its pipeline in the same transaction."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline.models import Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.factories import FeatureFactory

URL = "/api/features"


@pytest.fixture(autouse=True)
def _fresh_launch_counts():
    reset_launch_limits()


def post(client, **body):
    return client.post(URL, body, content_type="application/json")


def test_it_lets_the_owner_create_a_card(story):
    response = post(
        api_client(story.owner), workspace="alices-team", title="  Checkout  ", description="Pay"
    )

    assert response.status_code == 201
    body = response.json()
    feature = Feature.objects.get(pk=body["id"])
    assert (feature.title, feature.description, feature.created_by) == (
        "Checkout",
        "Pay",
        story.owner,
    )
    assert body["title"] == "Checkout"
    assert (body["workspace"], body["stage"], body["kind"], body["version"]) == (
        "alices-team",
        "idea",
        "feature",
        1,
    )
    assert body["run_id"] is None
    assert body["active_run"] is None
    assert feature.transitions.get().note == "Created"


def test_it_lets_a_teammate_create_a_card_in_a_stage_with_a_parent(story):
    parent = FeatureFactory.create(workspace=story.workspace, title="Epic")

    response = post(
        api_client(story.teammate),
        workspace="alices-team",
        title="Write docs",
        kind="story",
        parent=parent.pk,
        stage="doing",
    )

    assert response.status_code == 201
    feature = Feature.objects.get(pk=response.json()["id"])
    assert (feature.kind, feature.parent, feature.stage.key) == ("story", parent, "doing")


def test_it_refuses_a_viewer(story):
    response = post(api_client(story.viewer), workspace="alices-team", title="Checkout")

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert not Feature.objects.filter(title="Checkout").exists()


def test_it_hides_the_workspace_from_an_outsider(story):
    response = post(api_client(story.outsider), workspace="alices-team", title="Checkout")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert not Feature.objects.filter(title="Checkout").exists()


def test_it_asks_an_anonymous_caller_to_authenticate(story):
    response = post(api_client(), workspace="alices-team", title="Checkout")

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_it_creates_and_launches_in_one_call(story, no_enqueue):
    with no_enqueue() as callbacks:
        response = post(
            api_client(story.owner), workspace="alices-team", title="Checkout", launch=True
        )

    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get(feature_id=body["id"])
    assert body["run_id"] == run.pk == body["active_run"]
    assert body["pipeline"] == ["architecture", "tasks"]
    assert (body["stage"], body["status"]) == ("architecture", "queued")
    assert run.triggered_by == story.owner
    assert callbacks  # the run is enqueued only once the transaction commits


def test_it_runs_the_launched_pipeline_to_its_task_cards(story, eager):
    with eager():
        response = post(
            api_client(story.owner), workspace="alices-team", title="Checkout", launch=True
        )

    feature = Feature.objects.get(pk=response.json()["id"])
    assert feature.stage.key == "done"
    assert feature.children.filter(kind="task").count() >= 3


def test_it_leaves_no_card_behind_when_the_launch_is_refused(story):
    # Nothing runs after Done: the launch fails, and with it the whole request.
    response = post(
        api_client(story.owner), workspace="alices-team", title="Late", stage="done", launch=True
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "nothing_to_run"
    assert not Feature.objects.filter(title="Late").exists()


def test_it_refuses_a_parent_from_another_workspace(story):
    theirs = Feature.objects.create(
        workspace=story.outsider.memberships.get().workspace,
        title="Theirs",
        stage=story.outsider.memberships.get().workspace.stages.get(key="idea"),
    )

    response = post(
        api_client(story.owner), workspace="alices-team", title="Mine", parent=theirs.pk
    )

    assert response.status_code == 404
    assert error_of(response)["field"] == "parent"


def test_it_names_the_stages_when_the_stage_is_unknown(story):
    response = post(api_client(story.owner), workspace="alices-team", title="Mine", stage="nope")

    assert response.status_code == 404
    error = error_of(response)
    assert error["field"] == "stage"
    assert "idea, architecture, tasks, done" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "kind": "saga"}, "kind"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"title": "bad\x00byte"}, "title"),
        ({}, "title"),
    ],
)
def test_it_refuses_invalid_input_with_the_field_named(story, body, field):
    response = post(api_client(story.owner), workspace="alices-team", **body)

    assert response.status_code == 422
    error = error_of(response)
    assert (error["code"], error["field"]) == ("validation_error", field)
    assert not Feature.objects.filter(workspace=story.workspace).exists()
