"""POST /api/recipes/{id}/validate: {valid, errors, warnings} for a recipe or a proposed change."""

from __future__ import annotations

import pytest

from skills.models import StageRecipe
from tests.api_helpers import api_client
from tests.skill_helpers import own_skill


@pytest.fixture
def recipe(story):
    return StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")


def validate(client, recipe, body=None):
    url = f"/api/recipes/{recipe.pk}/validate"
    # No body at all (as `curl -X POST` sends) checks the recipe as it is.
    return client.post(url, "" if body is None else body, content_type="application/json")


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_finds_a_built_in_recipe_valid(story, recipe, who):
    response = validate(api_client(getattr(story, who)), recipe)

    assert response.status_code == 200
    assert response.json() == {"valid": True, "errors": [], "warnings": []}


def test_it_reports_missing_and_unvetted_skills_of_a_proposal(story, recipe):
    own_skill(story.workspace, trust="experimental")

    body = validate(
        api_client(story.owner), recipe, {"steps": ["summarise", "ghost"], "provider": "nope"}
    ).json()

    assert body["valid"] is False
    assert body["errors"] == [
        "No skill 'ghost': sync the library or add it first.",
        "summarise v1 is experimental: fully_auto recipes may only use vetted skills "
        "(vet it, or choose auto_notify or human_approval).",
    ]
    assert body["warnings"] == ["Provider 'nope' is not available on this server."]


def test_it_accepts_an_unvetted_skill_where_a_person_starts_the_run(story, recipe):
    own_skill(story.workspace, trust="experimental")

    body = validate(
        api_client(story.owner), recipe, {"steps": ["summarise"], "automation": "human_approval"}
    ).json()

    assert body == {"valid": True, "errors": [], "warnings": []}


def test_it_warns_when_no_gate_is_required(story, recipe):
    recipe.gates.update(required=False)

    body = validate(api_client(story.owner), recipe).json()

    assert body["valid"] is True
    assert body["warnings"] == ["No required gate: the card advances whatever this stage produces."]


def test_it_hides_the_recipe_from_an_outsider(story, recipe):
    assert validate(api_client(story.outsider), recipe).status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, recipe):
    assert validate(api_client(), recipe).status_code == 401
