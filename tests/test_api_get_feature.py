"""GET /api/features/{id}: one card with its children and latest artifacts."""

from __future__ import annotations

import pytest

from features.models import Artifact
from tests.api_helpers import api_client, error_of
from tests.factories import FeatureFactory


@pytest.fixture
def feature(story):
    feature = FeatureFactory.create(workspace=story.workspace, title="Checkout")
    FeatureFactory.create(workspace=story.workspace, title="Child", kind="task", parent=feature)
    Artifact.objects.create(feature=feature, name="spec.md", version=1, content="# Old")
    Artifact.objects.create(feature=feature, name="spec.md", version=2, content="# New")
    return feature


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_shows_a_card_to_every_member(story, feature, who):
    response = api_client(getattr(story, who)).get(f"/api/features/{feature.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["title"], body["version"]) == (feature.pk, "Checkout", 1)
    assert [c["title"] for c in body["children"]] == ["Child"]
    assert [(a["name"], a["version"], a["content"]) for a in body["artifacts"]] == [
        ("spec.md", 2, "# New")
    ]


def test_it_hides_a_card_from_an_outsider(story, feature):
    response = api_client(story.outsider).get(f"/api/features/{feature.pk}")

    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "No such feature."}


def test_it_asks_an_anonymous_caller_to_authenticate(story, feature):
    assert api_client().get(f"/api/features/{feature.pk}").status_code == 401


def test_it_answers_404_for_a_card_that_does_not_exist(story):
    assert api_client(story.owner).get("/api/features/999999").status_code == 404


def test_it_refuses_an_id_no_database_can_hold(story):
    response = api_client(story.owner).get(f"/api/features/{2**63}")

    assert response.status_code == 422
    assert error_of(response)["field"] == "id"
