"""skills.validation.validate_recipe: errors block a recipe, warnings only inform."""

from __future__ import annotations

import pytest

from skills.catalog import latest_skill
from skills.models import StageRecipe
from skills.validation import GateDraft, StepDraft, validate_recipe
from tests.skill_helpers import own_skill


@pytest.fixture
def recipe(story):
    return StageRecipe.objects.get(stage__workspace=story.workspace, stage__key="architecture")


def step(slug="write-architecture", **kwargs):
    return StepDraft(slug=slug, skill=latest_skill(slug), **kwargs)


def test_it_finds_the_built_in_recipe_valid(recipe):
    check = validate_recipe(recipe)

    assert (check.valid, check.errors, check.warnings) == (True, [], [])


def test_it_refuses_a_missing_skill(recipe):
    check = validate_recipe(recipe, steps=[StepDraft(slug="ghost", skill=None)])

    assert check.errors == ["No skill 'ghost': sync the library or add it first."]


def test_it_refuses_an_unvetted_skill_only_in_a_fully_automatic_recipe(story, recipe):
    community = own_skill(story.workspace, trust="community")
    steps = [StepDraft(slug="summarise", skill=community)]

    fully_auto = validate_recipe(recipe, steps=steps, automation="fully_auto")
    attended = validate_recipe(recipe, steps=steps, automation="human_approval")

    assert fully_auto.errors == [
        "summarise v1 is community: fully_auto recipes may only use vetted skills "
        "(vet it, or choose auto_notify or human_approval)."
    ]
    assert attended.valid


def test_it_refuses_an_input_mapped_from_an_unknown_source(recipe):
    check = validate_recipe(recipe, steps=[step(input_mapping={"spec": "nowhere_md"})])

    assert len(check.errors) == 1
    assert check.errors[0].startswith(
        "Step 1 (write-architecture): input 'spec' maps from 'nowhere_md', "
        "which is not a known input"
    )


def test_it_accepts_inputs_mapped_from_known_sources_and_earlier_steps(recipe):
    steps = [
        step(input_mapping={"brief": "description"}),
        step("generate-tasks", input_mapping={"design": "architecture_md", "again": "brief"}),
    ]

    assert validate_recipe(recipe, steps=steps).errors == []


@pytest.mark.parametrize("mapping", [[], {"spec": 3}, "spec"])
def test_it_refuses_a_mapping_that_is_not_names_to_names(recipe, mapping):
    check = validate_recipe(recipe, steps=[step(input_mapping=mapping)])

    assert check.errors
    assert "input mapping" in check.errors[0]


@pytest.mark.parametrize(
    ("gate_type", "config", "problem"),
    [
        ("file_exists", {}, 'file_exists needs a "pattern"'),
        ("content_check", {"file": "spec.md"}, 'content_check needs "required_sections"'),
        ("content_check", {"required_sections": ["Goals"]}, 'content_check needs the "file"'),
        ("artifact_exists", {}, 'artifact_exists needs a "name" or a "kind"'),
        ("artifact_exists", {"kind": "pdf"}, "kind 'pdf' is not one of"),
        ("metric_threshold", {"threshold": 70}, 'metric_threshold needs the "metric"'),
        ("metric_threshold", {"metric": "x", "operator": "=>", "threshold": 1}, "operator must"),
        ("metric_threshold", {"metric": "x", "threshold": "high"}, 'numeric "threshold"'),
        ("vibes", {}, "unknown type 'vibes'"),
    ],
)
def test_it_refuses_a_bad_gate_config(recipe, gate_type, config, problem):
    check = validate_recipe(recipe, gates=[GateDraft("G", gate_type, config)])

    assert len(check.errors) == 1
    assert problem in check.errors[0]


@pytest.mark.parametrize(
    ("gate_type", "config"),
    [
        ("file_exists", {"pattern": "*.md"}),
        ("content_check", {"file": "architecture.md", "required_sections": ["Overview"]}),
        ("artifact_exists", {"name": "architecture.md"}),
        ("metric_threshold", {"metric": "jury_score", "operator": ">=", "threshold": 70}),
    ],
)
def test_it_accepts_a_sound_gate_config(recipe, gate_type, config):
    assert validate_recipe(recipe, gates=[GateDraft("G", gate_type, config)]).valid


def test_it_only_warns_when_no_gate_is_required(recipe):
    check = validate_recipe(
        recipe, gates=[GateDraft("G", "file_exists", {"pattern": "*"}, required=False)]
    )

    assert check.valid
    assert check.warnings == ["No required gate: the card advances whatever this stage produces."]


def test_it_warns_about_an_empty_recipe_and_an_unknown_provider(recipe):
    check = validate_recipe(recipe, steps=[], provider="nope")

    assert check.valid
    assert "No steps: nothing runs in this stage." in check.warnings
    assert "Provider 'nope' is not available on this server." in check.warnings
