"""Editing a card's title and description from its detail page, with an optimistic version."""

from __future__ import annotations

import json

from django.urls import reverse

from features.models import Feature
from tests.engine_helpers import card

HTMX = {"HTTP_HX_REQUEST": "true"}
STALE = "Someone else changed this card; reload to see their version."


def _edit(story, user, feature: Feature, **data):
    fields: dict[str, object] = {"title": feature.title, "description": feature.description}
    fields.update({"version": feature.version, **data})
    return story.client_for(user).post(reverse("features:edit", args=[feature.pk]), fields, **HTMX)


def test_it_saves_a_members_edit_and_answers_with_the_header(story):
    feature = card(story.workspace, "Checkout", description="Old words.")

    response = _edit(
        story, story.teammate, feature, title="  Checkout v2 ", description="New words."
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<header id="feature-header"')
    assert "<h1>Checkout v2</h1>" in html
    assert '<input type="hidden" name="version" value="2">' in html
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Saved"
    feature.refresh_from_db()
    assert (feature.title, feature.description, feature.version) == (
        "Checkout v2",
        "New words.",
        2,
    )


def test_it_redirects_back_to_the_page_without_htmx(story):
    feature = card(story.workspace, "Checkout")

    response = story.client_for(story.owner).post(
        reverse("features:edit", args=[feature.pk]),
        {"title": "Checkout v2", "description": "", "version": feature.version},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("features:detail", args=[feature.pk])
    feature.refresh_from_db()
    assert feature.title == "Checkout v2"


def test_it_refuses_a_viewer(story):
    feature = card(story.workspace, "Checkout")

    response = _edit(story, story.viewer, feature, title="Viewer was here")

    assert response.status_code == 403
    feature.refresh_from_db()
    assert (feature.title, feature.version) == ("Checkout", 1)


def test_it_gives_an_outsider_404(story):
    feature = card(story.workspace, "Checkout")

    response = _edit(story, story.outsider, feature, title="Outsider was here")

    assert response.status_code == 404
    feature.refresh_from_db()
    assert feature.title == "Checkout"


def test_it_refuses_a_stale_version_and_keeps_the_other_edit(story):
    feature = card(story.workspace, "Checkout")
    assert _edit(story, story.owner, feature, title="Alice's title").status_code == 200

    # Bob's form still carries version 1.
    response = _edit(story, story.teammate, feature, title="Bob's title", version=1)

    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="edit-form"')
    assert response["HX-Retarget"] == "#edit-form"
    assert response["HX-Reswap"] == "outerHTML"
    assert STALE in html
    assert 'value="Bob&#x27;s title"' in html  # what Bob typed is not thrown away
    feature.refresh_from_db()
    assert (feature.title, feature.version) == ("Alice's title", 2)


def test_it_refuses_an_empty_title(story):
    feature = card(story.workspace, "Checkout")

    response = _edit(story, story.owner, feature, title="   ")

    assert response.status_code == 422
    html = response.content.decode()
    assert "A title is 1 to 200 characters." in html
    assert 'aria-invalid="true"' in html
    feature.refresh_from_db()
    assert (feature.title, feature.version) == ("Checkout", 1)


def test_it_refuses_a_title_over_200_characters(story):
    feature = card(story.workspace, "Checkout")

    response = _edit(story, story.owner, feature, title="x" * 201)

    assert response.status_code == 422
    assert "A title is 1 to 200 characters." in response.content.decode()
    feature.refresh_from_db()
    assert feature.title == "Checkout"


def test_it_renders_the_whole_page_with_the_error_without_htmx(story):
    feature = card(story.workspace, "Checkout")

    response = story.client_for(story.owner).post(
        reverse("features:edit", args=[feature.pk]), {"title": "", "version": 1}
    )

    assert response.status_code == 422
    html = response.content.decode()
    assert "<h1>Checkout</h1>" in html
    assert '<details class="edit" open>' in html
    assert "A title is 1 to 200 characters." in html
