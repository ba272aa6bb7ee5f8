"""GET /api/recipes and /api/recipes/{id}: each stage's recipe with its steps and gates."""

from __future__ import annotations

import pytest

from skills.models import StageRecipe
from tests.api_helpers import api_client, error_of


@pytest.fixture
def recipe(story):
    return StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_lists_the_workspaces_recipes_in_board_order(story, who):
    response = api_client(getattr(story, who)).get("/api/recipes?workspace=alices-team")

    assert response.status_code == 200
    recipes = response.json()
    assert [(r["stage"], r["automation"]) for r in recipes] == [
        ("architecture", "fully_auto"),
        ("tasks", "fully_auto"),
    ]
    assert [s["skill"] for s in recipes[0]["steps"]] == ["write-architecture"]
    assert recipes[0]["gates"][0]["required"] is True


def test_it_shows_one_recipe(story, recipe):
    response = api_client(story.viewer).get(f"/api/recipes/{recipe.pk}")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["stage_name"]) == (recipe.pk, "Architecture")


def test_it_keeps_recipes_from_outsiders(story, recipe):
    client = api_client(story.outsider)

    assert all(r["workspace"] == "charlies-team" for r in client.get("/api/recipes").json())
    assert error_of(client.get(f"/api/recipes/{recipe.pk}"))["code"] == "not_found"
    assert client.get("/api/recipes?workspace=alices-team").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, recipe):
    assert api_client().get("/api/recipes").status_code == 401
    assert api_client().get(f"/api/recipes/{recipe.pk}").status_code == 401
