"""engine.move_feature, a person's move: audit rows, column order, the run lock, automation."""

from __future__ import annotations

import pytest

from features.actions import FeatureError, do_create_feature
from features.models import Feature, StageTransition, Workspace
from pipeline import engine
from pipeline.models import Run


def _stage(story, key: str):
    return story.workspace.stages.get(key=key)


def _card(story, title: str, key: str = "idea") -> Feature:
    return do_create_feature(
        story.workspace, title=title, user=story.owner, stage=_stage(story, key)
    )


def _positions(story, key: str) -> list[tuple[str, int]]:
    return list(
        Feature.objects.filter(stage=_stage(story, key))
        .order_by("position")
        .values_list("title", "position")
    )


def test_it_moves_the_card_and_writes_a_transition(story):
    card = _card(story, "Checkout")
    idea, tasks = _stage(story, "idea"), _stage(story, "tasks")

    moved = engine.move_feature(
        card, tasks, user=story.teammate, note="Skipping ahead", start_automation=False
    )

    assert moved.stage == tasks
    assert Feature.objects.get(pk=card.pk).stage == tasks
    transition = StageTransition.objects.filter(feature=card).latest("id")
    assert transition.from_stage == idea
    assert transition.to_stage == tasks
    assert transition.actor_user == story.teammate
    assert transition.note == "Skipping ahead"


def test_it_bumps_the_version(story):
    card = _card(story, "Checkout")

    moved = engine.move_feature(card, _stage(story, "tasks"), user=None, start_automation=False)

    assert moved.version == 2


def test_it_writes_no_transition_for_a_move_within_a_column(story):
    card = _card(story, "Checkout")
    _card(story, "Other")

    engine.move_feature(
        card, _stage(story, "idea"), user=story.owner, position=1, start_automation=False
    )

    assert StageTransition.objects.filter(feature=card).count() == 1  # just "Created"


def test_it_appends_to_the_column_without_a_position(story):
    _card(story, "A", "tasks")
    _card(story, "B", "tasks")
    card = _card(story, "Moving")

    engine.move_feature(card, _stage(story, "tasks"), user=story.owner, start_automation=False)

    assert _positions(story, "tasks") == [("A", 0), ("B", 1), ("Moving", 2)]


def test_it_inserts_at_a_position_and_shifts_the_cards_below(story):
    _card(story, "A", "tasks")
    _card(story, "B", "tasks")
    _card(story, "C", "tasks")
    card = _card(story, "Moving")

    engine.move_feature(
        card, _stage(story, "tasks"), user=story.owner, position=1, start_automation=False
    )

    assert _positions(story, "tasks") == [("A", 0), ("Moving", 1), ("B", 2), ("C", 3)]


def test_it_leaves_other_columns_alone_when_shifting(story):
    _card(story, "Stays", "idea")
    _card(story, "Also stays", "idea")
    card = _card(story, "Moving", "architecture")

    engine.move_feature(
        card, _stage(story, "tasks"), user=story.owner, position=0, start_automation=False
    )

    assert _positions(story, "idea") == [("Stays", 0), ("Also stays", 1)]


def test_it_refuses_to_move_a_card_with_an_active_run(story):
    card = _card(story, "Checkout", "architecture")
    Run.objects.create(
        workspace=story.workspace, feature=card, stage=card.stage, status=Run.Status.RUNNING
    )

    with pytest.raises(FeatureError, match="active run"):
        engine.move_feature(card, _stage(story, "tasks"), user=story.owner, start_automation=False)

    card.refresh_from_db()
    assert card.stage.key == "architecture"
    assert card.version == 1
    assert StageTransition.objects.filter(feature=card).count() == 1


def test_it_lets_a_card_with_an_active_run_be_reordered_in_its_column(story):
    _card(story, "First", "architecture")
    card = _card(story, "Busy", "architecture")
    Run.objects.create(
        workspace=story.workspace, feature=card, stage=card.stage, status=Run.Status.QUEUED
    )

    engine.move_feature(
        card, _stage(story, "architecture"), user=story.owner, position=0, start_automation=False
    )

    assert _positions(story, "architecture") == [("Busy", 0), ("First", 1)]


def test_it_moves_a_card_whose_runs_have_finished(story):
    card = _card(story, "Checkout", "architecture")
    Run.objects.create(
        workspace=story.workspace, feature=card, stage=card.stage, status=Run.Status.FAILED
    )

    moved = engine.move_feature(
        card, _stage(story, "idea"), user=story.owner, start_automation=False
    )

    assert moved.stage.key == "idea"


def test_it_refuses_a_stage_of_another_workspace(story):
    card = _card(story, "Checkout")
    foreign = Workspace.objects.get(slug="charlies-team").stages.get(key="tasks")

    with pytest.raises(FeatureError, match="another workspace"):
        engine.move_feature(card, foreign, user=story.owner, start_automation=False)

    card.refresh_from_db()
    assert card.stage.key == "idea"


def test_it_queues_the_stage_run_when_a_card_enters_an_automated_stage(
    story, django_capture_on_commit_callbacks
):
    card = _card(story, "Checkout")

    with django_capture_on_commit_callbacks(execute=False):
        moved = engine.move_feature(card, _stage(story, "architecture"), user=story.teammate)

    run = Run.objects.get(feature=card)
    assert run.status == Run.Status.QUEUED
    assert run.stage.key == "architecture"
    assert run.triggered_by == story.teammate
    assert run.parent_run is None
    # Quick stops at "done": after architecture only the tasks stage is left to run.
    assert run.pipeline_next == ["tasks"]
    assert moved.status == Feature.Status.QUEUED
    assert Feature.objects.get(pk=card.pk).status == Feature.Status.QUEUED


def test_it_starts_nothing_when_a_card_enters_a_stage_without_a_recipe(
    story, django_capture_on_commit_callbacks
):
    card = _card(story, "Checkout", "architecture")

    with django_capture_on_commit_callbacks(execute=False):
        engine.move_feature(card, _stage(story, "idea"), user=story.owner)

    assert not Run.objects.filter(feature=card).exists()


def test_it_starts_nothing_without_start_automation(story):
    card = _card(story, "Checkout")

    engine.move_feature(
        card, _stage(story, "architecture"), user=story.owner, start_automation=False
    )

    assert not Run.objects.filter(feature=card).exists()
