"""POST /api/features/{id}/move: move a card; entering a stage starts its automation."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline.models import Run
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import stage
from tests.factories import FeatureFactory


@pytest.fixture
def feature(story):
    return FeatureFactory.create(workspace=story.workspace, title="Checkout")


def move(client, feature, **body):
    return client.post(f"/api/features/{feature.pk}/move", body, content_type="application/json")


def test_it_lets_the_owner_move_a_card_and_starts_the_stage(story, feature, no_enqueue):
    with no_enqueue():
        response = move(api_client(story.owner), feature, stage="architecture", note="Ready")

    assert response.status_code == 200
    body = response.json()
    assert (body["stage"], body["status"], body["version"]) == ("architecture", "queued", 2)
    run = Run.objects.get(feature=feature)
    assert body["active_run"] == run.pk
    transition = feature.transitions.order_by("-id").first()
    assert (transition.to_stage.key, transition.note, transition.actor_user) == (
        "architecture",
        "Ready",
        story.owner,
    )


def test_it_lets_a_teammate_put_a_card_at_a_position(story, feature):
    other = FeatureFactory.create(workspace=story.workspace, stage=stage(story.workspace, "done"))

    response = move(api_client(story.teammate), feature, stage="done", position=0)

    assert response.status_code == 200
    assert list(
        Feature.objects.filter(stage__key="done", workspace=story.workspace)
        .order_by("position")
        .values_list("pk", flat=True)
    ) == [feature.pk, other.pk]


def test_it_refuses_to_move_a_card_with_an_active_run(story, feature, no_enqueue):
    with no_enqueue():
        move(api_client(story.owner), feature, stage="architecture")

    response = move(api_client(story.owner), feature, stage="done")

    assert response.status_code == 409
    assert "active run" in error_of(response)["message"]
    assert Feature.objects.get(pk=feature.pk).stage.key == "architecture"


def test_it_refuses_an_unknown_stage(story, feature):
    response = move(api_client(story.owner), feature, stage="nowhere")

    assert response.status_code == 404
    assert error_of(response)["field"] == "stage"


def test_it_refuses_a_viewer(story, feature):
    response = move(api_client(story.viewer), feature, stage="done")

    assert response.status_code == 403
    assert Feature.objects.get(pk=feature.pk).stage.key == "idea"


def test_it_hides_the_card_from_an_outsider(story, feature):
    assert move(api_client(story.outsider), feature, stage="done").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, feature):
    assert move(api_client(), feature, stage="done").status_code == 401
