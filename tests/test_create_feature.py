"""do_create_feature: where a new card lands, what it refuses, and the audit row it writes."""

from __future__ import annotations

import pytest

from features.actions import FeatureError, do_create_feature
from features.models import Feature, Stage, StageTransition, Workspace


def _charlies(story) -> Workspace:
    return Workspace.objects.get(slug="charlies-team")


@pytest.mark.parametrize("kind", [Feature.Kind.FEATURE, Feature.Kind.EPIC, Feature.Kind.INCIDENT])
def test_it_puts_features_epics_and_incidents_first_on_the_feature_board(story, kind):
    feature = do_create_feature(story.workspace, title="Checkout", user=story.owner, kind=kind)

    assert feature.stage.key == "idea"
    assert feature.stage.board == Stage.Board.FEATURE
    assert feature.kind == kind


def test_it_puts_tasks_first_on_the_work_board(story):
    feature = do_create_feature(
        story.workspace, title="Write it", user=story.owner, kind=Feature.Kind.TASK
    )

    assert feature.stage.key == "todo"
    assert feature.stage.board == Stage.Board.WORK


def test_it_puts_stories_on_the_feature_board_where_their_pipeline_runs(story):
    feature = do_create_feature(
        story.workspace, title="Pay by card", user=story.owner, kind=Feature.Kind.STORY
    )

    assert feature.stage.key == "idea"
    assert feature.stage.board == Stage.Board.FEATURE


def test_it_uses_the_first_stage_of_the_template(product_story):
    feature = do_create_feature(product_story.workspace, title="Onboarding", user=None)

    assert feature.stage.key == "inbox"


def test_it_places_a_card_in_a_given_stage(story):
    stage = story.workspace.stages.get(key="tasks")

    feature = do_create_feature(story.workspace, title="Later", user=story.owner, stage=stage)

    assert feature.stage == stage


def test_it_refuses_a_stage_of_another_workspace(story):
    stage = _charlies(story).stages.get(key="idea")

    with pytest.raises(FeatureError, match="another workspace"):
        do_create_feature(story.workspace, title="Mixed", user=story.owner, stage=stage)

    assert not Feature.objects.exists()


def test_it_adds_each_new_card_at_the_bottom_of_its_column(story):
    first = do_create_feature(story.workspace, title="First", user=story.owner)
    second = do_create_feature(story.workspace, title="Second", user=story.owner)
    elsewhere = do_create_feature(
        story.workspace, title="Task", user=story.owner, kind=Feature.Kind.TASK
    )

    assert (first.position, second.position) == (0, 1)
    assert elsewhere.position == 0


@pytest.mark.parametrize("title", ["", "   "])
def test_it_requires_a_title(story, title):
    with pytest.raises(FeatureError, match="title"):
        do_create_feature(story.workspace, title=title, user=story.owner)

    assert not Feature.objects.exists()


def test_it_accepts_a_title_of_200_characters(story):
    feature = do_create_feature(story.workspace, title="x" * 200, user=story.owner)

    assert len(feature.title) == 200


def test_it_refuses_a_title_over_200_characters(story):
    with pytest.raises(FeatureError, match="200"):
        do_create_feature(story.workspace, title="x" * 201, user=story.owner)

    assert not Feature.objects.exists()


def test_it_strips_the_title(story):
    feature = do_create_feature(story.workspace, title="  Checkout  ", user=story.owner)

    assert feature.title == "Checkout"


def test_it_refuses_an_unknown_kind(story):
    with pytest.raises(FeatureError, match="kind"):
        do_create_feature(story.workspace, title="Bug", user=story.owner, kind="bug")


def test_it_links_a_parent_in_the_same_workspace(story):
    parent = do_create_feature(story.workspace, title="Checkout", user=story.owner)

    child = do_create_feature(
        story.workspace, title="Form", user=story.owner, kind=Feature.Kind.TASK, parent=parent
    )

    assert child.parent == parent
    assert list(parent.children.all()) == [child]


def test_it_refuses_a_parent_from_another_workspace(story):
    foreign = do_create_feature(_charlies(story), title="Theirs", user=story.outsider)

    with pytest.raises(FeatureError, match="another workspace"):
        do_create_feature(story.workspace, title="Ours", user=story.owner, parent=foreign)

    assert not Feature.objects.filter(workspace=story.workspace).exists()


def test_it_writes_a_created_transition(story):
    feature = do_create_feature(story.workspace, title="Checkout", user=story.teammate)

    transition = StageTransition.objects.get(feature=feature)
    assert transition.from_stage is None
    assert transition.to_stage == feature.stage
    assert transition.actor_user == story.teammate
    assert transition.note == "Created"


def test_it_records_the_creator(story):
    feature = do_create_feature(story.workspace, title="Checkout", user=story.teammate)

    assert feature.created_by == story.teammate
    assert feature.status == Feature.Status.IDLE
    assert feature.version == 1


def test_it_publishes_the_new_card_after_commit(story, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        do_create_feature(story.workspace, title="Checkout", user=story.owner)

    assert len(callbacks) == 1
