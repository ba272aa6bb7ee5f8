"""The admin saves a recipe with its steps and gates through the writer the editor and the API
use, refusing what they refuse; steps and gates are not edited one by one."""

from __future__ import annotations

from skills.models import Gate, RecipeStep, StageRecipe
from tests.admin_helpers import admin_url, form_data
from tests.factories import UserFactory


def recipe_page(story):
    staff = UserFactory.create(username="ops", is_staff=True, is_superuser=True)
    recipe = StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")
    return story.client_for(staff), recipe, admin_url(StageRecipe, "change", recipe.pk)


def gate_row(config: str) -> dict[str, str]:
    return {
        "gates-TOTAL_FORMS": "2",
        "gates-1-order": "5",
        "gates-1-name": "Has a score",
        "gates-1-type": "metric_threshold",
        "gates-1-config": config,
        "gates-1-required": "on",
        "gates-1-failure_message": "",
    }


def test_the_admin_refuses_a_gate_config_that_cannot_be_checked(story):
    client, recipe, url = recipe_page(story)
    data = form_data(client, url)
    assert data["gates-TOTAL_FORMS"] == 1

    refused = client.post(
        url, data | gate_row('{"metric": "jury_score", "operator": "=>", "threshold": 70}')
    )
    accepted = client.post(url, data | gate_row('{"metric": "jury_score", "threshold": 70}'))

    assert refused.status_code == 200
    assert "Gate config: operator must be one of" in refused.content.decode()
    assert accepted.status_code == 302
    assert list(recipe.gates.order_by("order").values_list("name", flat=True))[-1] == "Has a score"
    assert Gate.objects.filter(recipe=recipe, name="Has a score").count() == 1


def test_the_admin_saves_settings_steps_and_gates_as_the_editor_does(story):
    client, recipe, url = recipe_page(story)

    saved = client.post(
        url, form_data(client, url, model="claude-test", **{"steps-0-retry_count": 4})
    )

    assert saved.status_code == 302
    recipe.refresh_from_db()
    assert recipe.model == "claude-test"
    assert RecipeStep.objects.get(recipe=recipe).retry_count == 4


def test_steps_and_gates_are_read_only_on_their_own_pages(story):
    client, recipe, _ = recipe_page(story)
    gate = recipe.gates.first()

    assert client.get(admin_url(Gate, "add")).status_code == 403
    page = client.get(admin_url(Gate, "change", gate.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
