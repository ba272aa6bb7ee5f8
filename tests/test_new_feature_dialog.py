"""The new feature dialog: closes at once with a toast; the pipeline runs in the background."""

from __future__ import annotations

import json

from django.urls import reverse

from features.models import Feature
from pipeline.models import Run


def post(client, **data):
    return client.post(reverse("features:new", args=["alices-team"]), data, HTTP_HX_REQUEST="true")


def test_it_creates_and_launches_and_closes_the_dialog(story, no_enqueue):
    with no_enqueue():
        response = post(
            story.client_for(story.owner),
            title="Checkout",
            description="Pay",
            kind="feature",
            launch="on",
        )
    assert response.status_code == 200
    triggers = json.loads(response["HX-Trigger"])
    assert triggers["closeDialog"] == "new-feature"
    assert triggers["toast"]["message"] == "Generating feature in background…"
    assert response["HX-Reswap"] == "none"
    feature = Feature.objects.get(title="Checkout")
    assert Run.objects.filter(feature=feature, status=Run.Status.QUEUED).exists()
    assert f'id="card-{feature.pk}"' in response.content.decode()


def test_it_creates_without_launching(story):
    response = post(story.client_for(story.owner), title="Later", kind="epic")
    assert response.status_code == 200
    feature = Feature.objects.get(title="Later")
    assert feature.kind == Feature.Kind.EPIC
    assert not Run.objects.filter(feature=feature).exists()


def test_it_shows_errors_in_the_form(story):
    response = post(story.client_for(story.owner), title="", kind="feature")
    assert response.status_code == 422
    assert b"This field is required." in response.content
    assert b'id="new-feature-form"' in response.content
    assert not Feature.objects.filter(workspace=story.workspace).exists()


def test_it_refuses_an_oversized_title(story):
    response = post(story.client_for(story.owner), title="x" * 201, kind="feature")
    assert response.status_code == 422
    assert not Feature.objects.filter(workspace=story.workspace).exists()


def test_viewers_cannot_create(story):
    response = post(story.client_for(story.viewer), title="Nope", kind="feature")
    assert response.status_code == 403


def test_a_refused_launch_creates_nothing(story):
    from skills.models import StageRecipe

    StageRecipe.objects.filter(stage__workspace=story.workspace).update(enabled=False)
    client = story.client_for(story.teammate)

    response = post(client, title="Gift cards", kind="feature", launch="on")

    assert response.status_code == 422
    assert "Not created: Nothing to run" in response.content.decode()
    assert not Feature.objects.filter(title="Gift cards").exists()
