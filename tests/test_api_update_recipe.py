"""PATCH /api/recipes/{id}: admins change a recipe; one that would not validate is refused."""

from __future__ import annotations

import pytest

from pipeline import engine
from skills.models import RecipeStep, StageRecipe
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card
from tests.skill_helpers import own_skill


@pytest.fixture
def recipe(story):
    return StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")


def patch(client, recipe, **body):
    return client.patch(f"/api/recipes/{recipe.pk}", body, content_type="application/json")


def steps(recipe) -> list[str]:
    return list(recipe.steps.order_by("order").values_list("skill__slug", flat=True))


def test_it_lets_the_owner_change_automation_and_steps(story, recipe):
    RecipeStep.objects.filter(recipe=recipe).update(timeout_seconds=42)
    own_skill(story.workspace, trust="community")

    response = patch(
        api_client(story.owner),
        recipe,
        automation="auto_notify",
        steps=["write-architecture", "summarise"],
    )

    assert response.status_code == 200
    body = response.json()
    assert body["automation"] == "auto_notify"
    assert [(s["skill"], s["timeout_seconds"]) for s in body["steps"]] == [
        ("write-architecture", 42),  # a skill that stays keeps its step's settings
        ("summarise", 300),
    ]
    assert steps(recipe) == ["write-architecture", "summarise"]


def test_it_refuses_an_unvetted_skill_in_a_fully_automatic_recipe(story, recipe):
    own_skill(story.workspace, trust="experimental")

    response = patch(api_client(story.owner), recipe, steps=["summarise"])

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "invalid_recipe"
    assert "may only use vetted skills" in error["message"]
    assert steps(recipe) == ["write-architecture"]


def test_it_refuses_an_unknown_skill(story, recipe):
    response = patch(api_client(story.owner), recipe, steps=["no-such-skill"])

    assert response.status_code == 404
    assert "No skill 'no-such-skill'" in error_of(response)["message"]


def test_it_will_not_change_steps_under_a_running_stage(story, recipe, no_enqueue):
    with no_enqueue():
        engine.launch_pipeline(card(story.workspace), story.owner)

    response = patch(
        api_client(story.owner), recipe, steps=["write-architecture", "write-architecture"]
    )
    unchanged = patch(api_client(story.owner), recipe, steps=["write-architecture"], model="m")

    assert response.status_code == 409
    assert error_of(response)["code"] == "stage_busy"
    assert recipe.steps.count() == 1
    # The same steps with new settings is no change to what the running stage reads.
    assert unchanged.status_code == 200


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_it_refuses_members_who_are_not_admins(story, recipe, who):
    response = patch(api_client(getattr(story, who)), recipe, automation="manual")

    assert response.status_code == 403
    assert StageRecipe.objects.get(pk=recipe.pk).automation == "fully_auto"


def test_it_hides_the_recipe_from_an_outsider(story, recipe):
    assert patch(api_client(story.outsider), recipe, automation="manual").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, recipe):
    assert patch(api_client(), recipe, automation="manual").status_code == 401


def test_it_refuses_unknown_fields(story, recipe):
    response = patch(api_client(story.owner), recipe, gates=[])

    assert response.status_code == 422
    assert error_of(response)["field"] == "gates"
