"""Script in titles, descriptions and artifacts comes back as inert JSON text, and pages escape
or sanitise it."""

from __future__ import annotations

import pytest

from features.models import Artifact, Feature
from pipeline.models import Run
from tests.api_helpers import api_client
from tests.engine_helpers import stage

TITLE = "<script>alert('title')</script>"
DESCRIPTION = '<img src=x onerror="alert(1)"> and <b>bold</b>'
ARTIFACT = (
    "# Plan\n\n"
    '<script>alert("artifact")</script>\n\n'
    "[click](javascript:alert(1))\n\n"
    "<img src=x onerror=alert(2)>"
)


@pytest.fixture
def feature(story):
    response = api_client(story.owner).post(
        "/api/features",
        {"workspace": "alices-team", "title": TITLE, "description": DESCRIPTION},
        content_type="application/json",
    )
    assert response.status_code == 201
    return Feature.objects.get(pk=response.json()["id"])


@pytest.fixture
def run_with_artifact(story, feature):
    run = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.SUCCEEDED,
    )
    Artifact.objects.create(feature=feature, run=run, name="architecture.md", content=ARTIFACT)
    return run


def test_it_returns_the_text_raw_as_json(story, feature):
    response = api_client(story.owner).get(f"/api/features/{feature.pk}")

    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert (response.json()["title"], response.json()["description"]) == (TITLE, DESCRIPTION)


def test_it_returns_artifacts_raw_as_json(story, run_with_artifact):
    response = api_client(story.owner).get(f"/api/runs/{run_with_artifact.pk}")

    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json()["artifacts"][0]["content"] == ARTIFACT


def test_it_escapes_the_card_on_the_board(story, feature):
    page = story.client_for(story.owner).get("/w/alices-team/").content.decode()

    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in page
    assert TITLE not in page


def test_it_escapes_the_description_and_sanitises_artifacts_on_the_detail_page(
    story, run_with_artifact
):
    page = story.client_for(story.owner).get(f"/features/{run_with_artifact.feature_id}/")
    html = page.content.decode()

    assert page.status_code == 200
    assert TITLE not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<h3>Plan</h3>" in html  # the markdown still renders
    assert 'alert("artifact")' not in html
    assert "javascript:" not in html
    assert "onerror=alert(2)" not in html
