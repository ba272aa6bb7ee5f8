"""Every gate type, passing and failing, as a recipe's gate on a real (offline) run."""

from __future__ import annotations

import pytest

from pipeline import engine
from skills.catalog import latest_skill
from skills.models import Gate, RecipeStep, StageRecipe
from tests.engine_helpers import card, chain

SCORED = "Let shoppers pay with a saved card. [offline:score=80]"


def run_with_gate(story, eager, gate_type, config, *, skill="write-architecture"):
    recipe = StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")
    RecipeStep.objects.filter(recipe=recipe).update(skill=latest_skill(skill))
    recipe.gates.all().delete()
    Gate.objects.create(
        recipe=recipe, name="the gate", type=gate_type, config=config, failure_message="Blocked."
    )
    feature = card(story.workspace, description=SCORED)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    feature.refresh_from_db()
    return chain(feature)[0], feature


@pytest.mark.parametrize(
    ("gate_type", "config", "skill"),
    [
        ("file_exists", {"pattern": "*.md"}, "write-architecture"),
        (
            "content_check",
            {"file": "architecture.md", "required_sections": ["Overview", "Risks"]},
            "write-architecture",
        ),
        ("artifact_exists", {"name": "architecture.md", "kind": "document"}, "write-architecture"),
        (
            "metric_threshold",
            {"metric": "jury_score", "operator": ">=", "threshold": 70},
            "jury-validate",
        ),
    ],
)
def test_a_passing_gate_lets_the_card_move_on(story, eager, gate_type, config, skill):
    run, feature = run_with_gate(story, eager, gate_type, config, skill=skill)

    assert run.status == "succeeded"
    assert run.result["gates"] == [
        {"name": "the gate", "passed": True, "required": True, "message": ""}
    ]
    assert feature.stage.key != "architecture"


@pytest.mark.parametrize(
    ("gate_type", "config", "skill", "why"),
    [
        ("file_exists", {"pattern": "*.pdf"}, "write-architecture", "no artifact matches '*.pdf'"),
        (
            "content_check",
            {"file": "architecture.md", "required_sections": ["Budget"]},
            "write-architecture",
            "architecture.md is missing section(s): Budget",
        ),
        (
            "artifact_exists",
            {"name": "tasks.json"},
            "write-architecture",
            "no artifact with name=tasks.json",
        ),
        (
            "metric_threshold",
            {"metric": "jury_score", "operator": ">", "threshold": 90},
            "jury-validate",
            "jury_score = 80, needs > 90",
        ),
    ],
)
def test_a_failing_gate_stops_the_card_with_its_message(
    story, eager, gate_type, config, skill, why
):
    run, feature = run_with_gate(story, eager, gate_type, config, skill=skill)

    assert (run.status, run.error_kind) == ("failed", "gate")
    assert run.error_message == f"Blocked. ({why})"
    assert (feature.stage.key, feature.status) == ("architecture", "failed")


def test_an_optional_gate_that_fails_does_not_stop_the_card(story, eager):
    recipe = StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")
    Gate.objects.create(
        recipe=recipe,
        name="nice to have",
        type="file_exists",
        config={"pattern": "*.pdf"},
        required=False,
    )
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)

    first = chain(feature)[0]
    assert first.status == "succeeded"
    assert {
        "name": "nice to have",
        "passed": False,
        "required": False,
        "message": "no artifact matches '*.pdf'",
    } in first.result["gates"]
