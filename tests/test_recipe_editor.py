"""The recipe editor page: owners and admins edit, members and viewers read, outsiders 404."""

from __future__ import annotations

import pytest

from features.models import Membership
from pipeline import engine
from pipeline.models import Run
from skills.catalog import latest_skill
from skills.models import Gate, RecipeStep, Skill, StageRecipe
from tests.engine_helpers import card, chain
from tests.skill_helpers import own_skill


def url(story, stage="architecture"):
    return f"/w/{story.workspace.slug}/recipes/{stage}/"


def recipe_of(story, stage="architecture"):
    return StageRecipe.objects.get(stage__workspace=story.workspace, stage__key=stage)


def form(**overrides):
    """The architecture recipe as the page posts it, with changes."""
    data = {
        "op": "save",
        "automation": "fully_auto",
        "on_fail": "stay",
        "provider": "",
        "model": "",
        "enabled": "on",
        "step_count": "1",
        "step-0-skill": "write-architecture",
        "step-0-params": "{}",
        "step-0-input_mapping": "{}",
        "step-0-output_mapping": "{}",
        "step-0-timeout_seconds": "300",
        "step-0-retry_count": "2",
        "gate_count": "1",
        "gate-0-name": "architecture.md has its sections",
        "gate-0-type": "content_check",
        "gate-0-config": '{"file": "architecture.md", "required_sections": ["Overview"]}',
        "gate-0-required": "on",
        "gate-0-failure_message": "Missing sections.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_everyone_in_the_workspace_reads_the_recipe(story, who):
    response = story.client_for(getattr(story, who)).get(url(story))

    assert response.status_code == 200
    page = response.content.decode()
    assert "write-architecture v1" in page
    assert ("Validate and save" in page) is (who == "owner")


def test_an_admin_may_edit(story):
    Membership.objects.filter(user=story.teammate).update(role=Membership.Role.ADMIN)

    response = story.client_for(story.teammate).post(url(story), form(on_fail="revert"))

    assert response.status_code == 302
    assert recipe_of(story).on_fail == "revert"


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_members_and_viewers_cannot_change_it(story, who):
    response = story.client_for(getattr(story, who)).post(url(story), form(on_fail="revert"))

    assert response.status_code == 403
    assert recipe_of(story).on_fail == "stay"


def test_an_outsider_finds_nothing(story):
    client = story.client_for(story.outsider)

    assert client.get(url(story)).status_code == 404
    assert client.post(url(story), form()).status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(story, client):
    response = client.get(url(story))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_an_unknown_stage_is_404(story):
    assert story.client_for(story.owner).get(url(story, "nowhere")).status_code == 404


def test_it_saves_settings_steps_and_gates(story):
    response = story.client_for(story.owner).post(
        url(story),
        form(
            automation="auto_notify",
            provider="offline",
            model="m-1",
            **{
                "step-0-params": '{"tone": "brief"}',
                "step-0-input_mapping": '{"brief": "description"}',
                "step-0-timeout_seconds": "60",
                "step-0-retry_count": "0",
                "gate-0-type": "metric_threshold",
                "gate-0-config": '{"metric": "jury_score", "operator": ">", "threshold": 50}',
            },
        ),
    )

    assert response.status_code == 302
    recipe = recipe_of(story)
    assert (recipe.automation, recipe.provider, recipe.model) == ("auto_notify", "offline", "m-1")
    step = recipe.steps.get()
    assert (step.params, step.input_mapping) == ({"tone": "brief"}, {"brief": "description"})
    assert (step.timeout_seconds, step.retry_count) == (60, 0)
    gate = recipe.gates.get()
    assert (gate.type, gate.config["operator"], gate.required) == ("metric_threshold", ">", True)


def test_blocking_errors_are_shown_and_nothing_is_saved(story):
    own_skill(story.workspace, trust="community")

    response = story.client_for(story.owner).post(
        url(story),
        form(**{"step-0-skill": "summarise", "gate-0-config": '{"file": "x.md"}'}),
    )

    assert response.status_code == 422
    page = response.content.decode()
    assert "Not saved: fix these first" in page
    assert "summarise v1 is community: fully_auto recipes may only use vetted skills" in page
    assert "content_check needs &quot;required_sections&quot;" in page
    assert recipe_of(story).steps.get().skill.slug == "write-architecture"


def test_bad_json_and_numbers_are_errors(story):
    response = story.client_for(story.owner).post(
        url(story),
        form(**{"step-0-params": "{oops", "step-0-timeout_seconds": "0"}),
    )

    assert response.status_code == 422
    page = response.content.decode()
    assert "Step 1 params is not valid JSON" in page
    assert "Step 1 timeout must be a whole number from 1 to 86400." in page
    assert "{oops" in page  # kept as typed


def test_a_recipe_without_a_required_gate_saves_with_a_warning(story):
    response = story.client_for(story.owner).post(
        url(story), form(**{"gate-0-required": None}), HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Recipe saved." in page
    assert "No required gate: the card advances whatever this stage produces." in page
    assert recipe_of(story).gates.get().required is False


def test_steps_are_added_removed_and_reordered_without_saving(story):
    client = story.client_for(story.owner)
    two_steps = form(
        op="add-step",
        **{"step_count": "1"},
    )

    added = client.post(url(story), two_steps, HTTP_HX_REQUEST="true").content.decode()
    assert 'name="step_count" value="2"' in added

    moved = client.post(
        url(story),
        form(
            op="down:0",
            step_count="2",
            **{"step-1-skill": "generate-tasks", "step-1-timeout_seconds": "300"},
        ),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert moved.index('value="generate-tasks" selected') < moved.index(
        'value="write-architecture" selected'
    )
    removed = client.post(url(story), form(op="remove-gate:0"), HTTP_HX_REQUEST="true")
    assert 'name="gate_count" value="0"' in removed.content.decode()
    assert recipe_of(story).steps.count() == 1
    assert recipe_of(story).gates.count() == 1


def test_a_step_keeps_its_pinned_version_when_saved(story):
    v1 = latest_skill("write-architecture")
    newer = Skill.objects.create(
        slug="write-architecture",
        version=2,
        name=v1.name,
        trust="vetted",
        output=v1.output,
        artifact_name=v1.artifact_name,
        prompt_template="v2 {{title}}",
    )

    story.client_for(story.owner).post(url(story), form(**{"step-0-skill_id": str(v1.pk)}))

    assert recipe_of(story).steps.get().skill_id == v1.pk
    assert newer.pk != v1.pk


def test_editing_a_prompt_makes_a_new_version_and_points_the_recipe_at_it(story, eager):
    v1 = latest_skill("write-architecture")
    client = story.client_for(story.owner)

    response = client.post(
        f"/w/{story.workspace.slug}/recipes/architecture/prompts/{v1.pk}",
        {"prompt": "Design {{title}} carefully. {{description}}"},
    )

    assert response.status_code == 302
    step = RecipeStep.objects.get(recipe=recipe_of(story))
    assert step.skill.prompt_template == "Design {{title}} carefully. {{description}}"
    assert (step.skill.workspace, step.skill.version) == (story.workspace, 1)
    v1.refresh_from_db()
    assert v1.prompt_template != step.skill.prompt_template  # the built-in is untouched
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    assert chain(feature)[0].skill_versions == {"write-architecture": 1}
    assert Skill.objects.filter(slug="write-architecture", workspace=story.workspace).count() == 1
    assert "write-architecture v1" in client.get(f"/features/{feature.pk}/").content.decode()


def test_a_prompt_with_an_unknown_placeholder_is_refused(story):
    v1 = latest_skill("write-architecture")

    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/recipes/architecture/prompts/{v1.pk}",
        {"prompt": "Leak {{secret}}"},
    )

    assert response.status_code == 422
    assert "Placeholder(s) secret are not inputs of write-architecture" in response.content.decode()
    assert not Skill.objects.filter(workspace=story.workspace).exists()


@pytest.mark.parametrize(("who", "status"), [("teammate", 403), ("outsider", 404)])
def test_only_admins_edit_prompts(story, who, status):
    v1 = latest_skill("write-architecture")

    response = story.client_for(getattr(story, who)).post(
        f"/w/{story.workspace.slug}/recipes/architecture/prompts/{v1.pk}", {"prompt": "x"}
    )

    assert response.status_code == status


def test_an_invalid_recipe_fails_the_run_before_its_first_step(story, eager):
    recipe = recipe_of(story)
    Gate.objects.filter(recipe=recipe).update(config={"file": "architecture.md"})
    feature = card(story.workspace)

    with eager():
        engine.launch_pipeline(feature, story.owner)

    run = chain(feature)[0]
    assert run.status == Run.Status.FAILED
    assert run.error_message.startswith("Recipe invalid: Gate 1 (architecture.md has its sections)")
    assert run.error_message.endswith("Fix the Architecture recipe, then Retry.")
    assert run.step_index == 0


def test_the_board_and_settings_link_to_each_recipe(story):
    client = story.client_for(story.owner)

    assert url(story) in client.get(f"/w/{story.workspace.slug}/").content.decode()
    assert url(story, "tasks") in client.get(f"/w/{story.workspace.slug}/settings").content.decode()


def test_a_prompt_saved_through_the_api_moves_the_recipes_to_the_new_version(story):
    from tests.api_helpers import api_client
    from tests.factories import UserFactory

    v1 = latest_skill("write-architecture")
    site_admin = UserFactory.create(username="root", is_superuser=True)

    response = api_client(site_admin).patch(
        f"/api/skills/{v1.pk}", {"prompt": "Design {{title}}."}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["version"] == 2
    step = RecipeStep.objects.select_related("skill").get(recipe=recipe_of(story))
    assert (step.skill.workspace, step.skill.version) == (None, 2)
    v1.refresh_from_db()
    assert v1.prompt_template != "Design {{title}}."
