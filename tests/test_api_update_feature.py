"""PATCH /api/features/{id}: edit text with optimistic locking on `version`."""

from __future__ import annotations

import pytest

from features.models import Feature
from tests.api_helpers import api_client, error_of
from tests.factories import FeatureFactory


@pytest.fixture
def feature(story):
    return FeatureFactory.create(workspace=story.workspace, title="Checkout", description="Old")


def patch(client, feature, **body):
    return client.patch(f"/api/features/{feature.pk}", body, content_type="application/json")


def test_it_lets_the_owner_edit_with_the_current_version(story, feature):
    response = patch(api_client(story.owner), feature, version=1, title="Checkout v2")

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["version"]) == ("Checkout v2", 2)
    feature.refresh_from_db()
    assert (feature.title, feature.description, feature.version) == ("Checkout v2", "Old", 2)


def test_it_lets_a_teammate_edit_the_description(story, feature):
    response = patch(api_client(story.teammate), feature, version=1, description="New")

    assert response.status_code == 200
    assert Feature.objects.get(pk=feature.pk).description == "New"


def test_it_refuses_a_stale_version_and_keeps_the_newer_text(story, feature):
    patch(api_client(story.teammate), feature, version=1, title="Bob's title")

    response = patch(api_client(story.owner), feature, version=1, title="Alice's title")

    assert response.status_code == 409
    error = error_of(response)
    assert (error["code"], error["field"]) == ("stale_version", "version")
    assert Feature.objects.get(pk=feature.pk).title == "Bob's title"


def test_it_requires_the_version(story, feature):
    response = patch(api_client(story.owner), feature, title="No version")

    assert response.status_code == 422
    assert error_of(response)["field"] == "version"


def test_it_refuses_a_viewer(story, feature):
    response = patch(api_client(story.viewer), feature, version=1, title="Nope")

    assert response.status_code == 403
    assert Feature.objects.get(pk=feature.pk).title == "Checkout"


def test_it_hides_the_card_from_an_outsider(story, feature):
    assert patch(api_client(story.outsider), feature, version=1, title="x").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, feature):
    assert patch(api_client(), feature, version=1, title="x").status_code == 401


def test_it_refuses_a_blank_title(story, feature):
    response = patch(api_client(story.owner), feature, version=1, title=" ")

    assert response.status_code == 422
    assert error_of(response)["field"] == "title"
