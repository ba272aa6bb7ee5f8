"""The admin refuses a gate whose config the engine could never check, as the editor does."""

from __future__ import annotations

from skills.models import Gate, StageRecipe
from tests.factories import UserFactory


def test_the_admin_refuses_a_gate_config_that_cannot_be_checked(story):
    staff = UserFactory.create(username="ops", is_staff=True, is_superuser=True)
    recipe = StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")
    client = story.client_for(staff)
    data = {
        "recipe": recipe.pk,
        "order": 5,
        "name": "Has a score",
        "type": "metric_threshold",
        "config": '{"metric": "jury_score", "operator": "=>", "threshold": 70}',
        "required": "on",
        "failure_message": "",
    }

    refused = client.post("/admin/skills/gate/add/", data)
    accepted = client.post(
        "/admin/skills/gate/add/", {**data, "config": '{"metric": "jury_score", "threshold": 70}'}
    )

    assert refused.status_code == 200
    assert "Gate config: operator must be one of" in refused.content.decode()
    assert accepted.status_code == 302
    assert Gate.objects.filter(recipe=recipe, name="Has a score").count() == 1
