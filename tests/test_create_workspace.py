"""do_create_workspace: a template's stages, the work board, an owner and ready-made recipes."""

from __future__ import annotations

import pytest

from features.actions import FeatureError, do_create_workspace
from features.models import Membership, Stage, Workspace
from features.stage_templates import DEFAULT_STOP_STAGE, TEMPLATES, WORK_BOARD
from skills.defaults import DEFAULT_RECIPES, JURY_PASS_SCORE
from skills.models import Gate, Skill, StageRecipe
from tests.factories import UserFactory


@pytest.fixture
def owner(db):
    return UserFactory.create(username="alice")


def _create(owner, template: str) -> Workspace:
    return do_create_workspace(name=f"{template} team", template=template, owner=owner)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_it_creates_the_template_stages_in_order(owner, template):
    workspace = _create(owner, template)

    feature_board = workspace.stages.filter(board=Stage.Board.FEATURE).order_by("position")
    assert [s.key for s in feature_board] == [s.key for s in TEMPLATES[template]]
    assert [s.position for s in feature_board] == list(range(len(TEMPLATES[template])))
    assert [s.name for s in feature_board] == [s.name for s in TEMPLATES[template]]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_it_creates_the_work_board(owner, template):
    workspace = _create(owner, template)

    work_board = workspace.stages.filter(board=Stage.Board.WORK).order_by("position")
    assert [s.key for s in work_board] == ["todo", "doing", "review", "finished"]
    assert [s.key for s in work_board] == [s.key for s in WORK_BOARD]
    assert [s.is_done for s in work_board] == [False, False, False, True]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_it_sets_the_default_stop_stage(owner, template):
    workspace = _create(owner, template)

    workspace.refresh_from_db()
    assert workspace.stop_stage is not None
    assert workspace.stop_stage.key == DEFAULT_STOP_STAGE[template]
    assert workspace.stop_stage.workspace_id == workspace.pk


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_it_makes_the_creator_owner(owner, template):
    workspace = _create(owner, template)

    membership = Membership.objects.get(workspace=workspace)
    assert membership.user == owner
    assert membership.role == Membership.Role.OWNER


def test_it_marks_done_and_live_stages(owner):
    workspace = _create(owner, "delivery")

    assert workspace.stages.get(key="done").is_done
    assert workspace.stages.get(key="live").is_live
    assert not workspace.stages.get(key="spec").is_done


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_it_installs_a_recipe_for_each_default_stage(owner, template):
    workspace = _create(owner, template)

    recipes = StageRecipe.objects.filter(stage__workspace=workspace)
    assert {r.stage.key for r in recipes} == set(DEFAULT_RECIPES[template])
    for recipe in recipes:
        wanted = DEFAULT_RECIPES[template][recipe.stage.key].skills
        assert [step.skill.slug for step in recipe.steps.order_by("order")] == list(wanted)
        assert [step.order for step in recipe.steps.order_by("order")] == list(
            range(1, len(wanted) + 1)
        )
        assert recipe.gates.exists()


def test_it_gives_the_quick_architecture_stage_its_step_and_section_gate(owner):
    workspace = _create(owner, "quick")

    recipe = workspace.stages.get(key="architecture").recipe
    steps = list(recipe.steps.all())
    assert [s.skill.slug for s in steps] == ["write-architecture"]
    assert steps[0].skill.trust == Skill.Trust.VETTED
    gate = recipe.gates.get()
    assert gate.type == Gate.Type.CONTENT_CHECK
    assert gate.required
    assert gate.config == {
        "file": "architecture.md",
        "required_sections": ["Overview", "Components", "Data model", "Risks"],
    }


def test_it_gives_the_quick_tasks_stage_an_artifact_gate(owner):
    workspace = _create(owner, "quick")

    recipe = workspace.stages.get(key="tasks").recipe
    assert [s.skill.slug for s in recipe.steps.all()] == ["generate-tasks"]
    gate = recipe.gates.get()
    assert gate.type == Gate.Type.ARTIFACT_EXISTS
    assert gate.config == {"name": "tasks.json"}


def test_it_gives_product_validate_a_jury_score_threshold(owner):
    workspace = _create(owner, "product")

    recipe = workspace.stages.get(key="validate").recipe
    gates = {g.type: g for g in recipe.gates.all()}
    assert gates[Gate.Type.METRIC_THRESHOLD].config == {
        "metric": "jury_score",
        "operator": ">=",
        "threshold": JURY_PASS_SCORE,
    }
    assert gates[Gate.Type.CONTENT_CHECK].config["required_sections"] == [
        "Jury",
        "Score",
        "Concerns",
    ]


def test_it_orders_gates_of_a_two_step_recipe(owner):
    workspace = _create(owner, "delivery")

    recipe = workspace.stages.get(key="spec-review").recipe
    assert [s.skill.slug for s in recipe.steps.all()] == ["review-spec", "generate-tasks"]
    gates = list(recipe.gates.all())
    assert [g.type for g in gates] == [Gate.Type.CONTENT_CHECK, Gate.Type.ARTIFACT_EXISTS]
    assert [g.order for g in gates] == [0, 1]


def test_it_leaves_stages_without_defaults_without_a_recipe(owner):
    workspace = _create(owner, "quick")

    for key in ("idea", "done", "todo", "doing", "review", "finished"):
        assert not StageRecipe.objects.filter(stage__workspace=workspace, stage__key=key).exists()


def test_it_shares_builtin_skills_between_workspaces(owner):
    _create(owner, "quick")
    before = Skill.objects.count()

    do_create_workspace(name="Second", template="quick", owner=owner)

    assert Skill.objects.count() == before
    assert not Skill.objects.filter(workspace__isnull=False).exists()


def test_it_slugifies_the_name_unless_a_slug_is_given(owner):
    named = do_create_workspace(name="Payments Team", template="quick", owner=owner)
    slugged = do_create_workspace(name="Other", template="quick", owner=owner, slug="pay-2")

    assert named.slug == "payments-team"
    assert slugged.slug == "pay-2"


def test_it_refuses_an_unknown_template(owner):
    with pytest.raises(FeatureError, match="kanban"):
        do_create_workspace(name="Nope", template="kanban", owner=owner)

    assert not Workspace.objects.exists()
    assert not Stage.objects.exists()
