"""The database itself refuses the states the engine promises never to reach.

Rows are created with Model.objects.create so the constraint, not application code, is tested.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from features.models import Artifact, Dependency, Feature, Stage, Workspace
from pipeline.models import Run
from skills.models import Skill
from tests.factories import FeatureFactory

ACTIVE = [Run.Status.QUEUED, Run.Status.RUNNING, Run.Status.AWAITING_APPROVAL]
FINISHED = [Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED]


def _stage(workspace: Workspace, key: str = "architecture") -> Stage:
    return workspace.stages.get(key=key)


def _run(feature: Feature, status: str, parent: Run | None = None) -> Run:
    return Run.objects.create(
        workspace=feature.workspace,
        feature=feature,
        stage=_stage(feature.workspace),
        status=status,
        parent_run=parent,
    )


@pytest.fixture
def feature(story) -> Feature:
    return FeatureFactory.create(workspace=story.workspace)


@pytest.mark.parametrize("first", ACTIVE)
@pytest.mark.parametrize("second", ACTIVE)
def test_it_refuses_a_second_active_run_for_one_feature(feature, first, second):
    _run(feature, first)

    with pytest.raises(IntegrityError), transaction.atomic():
        _run(feature, second)

    assert feature.runs.count() == 1


@pytest.mark.parametrize("finished", FINISHED)
def test_it_allows_a_new_run_once_the_first_has_finished(feature, finished):
    _run(feature, finished)

    _run(feature, Run.Status.QUEUED)

    assert feature.runs.count() == 2


def test_it_allows_an_active_run_on_each_of_two_features(story):
    one = FeatureFactory.create(workspace=story.workspace)
    two = FeatureFactory.create(workspace=story.workspace)

    _run(one, Run.Status.RUNNING)
    _run(two, Run.Status.RUNNING)

    assert Run.objects.filter(status=Run.Status.RUNNING).count() == 2


def test_it_refuses_a_second_child_of_one_parent_run(story):
    parent = _run(FeatureFactory.create(workspace=story.workspace), Run.Status.SUCCEEDED)
    _run(FeatureFactory.create(workspace=story.workspace), Run.Status.SUCCEEDED, parent=parent)

    with pytest.raises(IntegrityError), transaction.atomic():
        _run(FeatureFactory.create(workspace=story.workspace), Run.Status.QUEUED, parent=parent)

    assert parent.child_runs.count() == 1


def test_it_allows_many_runs_without_a_parent(feature):
    _run(feature, Run.Status.SUCCEEDED)
    _run(feature, Run.Status.FAILED)

    assert Run.objects.filter(parent_run__isnull=True).count() == 2


def test_it_refuses_a_duplicate_stage_key_in_one_workspace(story):
    with pytest.raises(IntegrityError), transaction.atomic():
        Stage.objects.create(
            workspace=story.workspace, key="architecture", name="Again", position=99
        )


def test_it_allows_the_same_stage_key_in_another_workspace(story):
    other = Workspace.objects.create(name="Other", slug="other", template="quick")

    Stage.objects.create(workspace=other, key="architecture", name="Architecture", position=0)

    assert Stage.objects.filter(key="architecture").count() == 3  # alice's, charlie's, other


def test_it_refuses_a_duplicate_artifact_version(feature):
    Artifact.objects.create(feature=feature, name="spec.md", version=1, content="one")
    Artifact.objects.create(feature=feature, name="spec.md", version=2, content="two")

    with pytest.raises(IntegrityError), transaction.atomic():
        Artifact.objects.create(feature=feature, name="spec.md", version=2, content="again")

    assert feature.artifacts.count() == 2


def test_it_allows_the_same_artifact_version_on_another_feature(story, feature):
    other = FeatureFactory.create(workspace=story.workspace)
    Artifact.objects.create(feature=feature, name="spec.md", version=1)

    Artifact.objects.create(feature=other, name="spec.md", version=1)

    assert Artifact.objects.filter(name="spec.md", version=1).count() == 2


def test_it_refuses_a_second_card_for_one_generated_item(story, feature):
    tasks = _stage(story.workspace, "tasks")
    todo = _stage(story.workspace, "todo")

    def generated(key: str, title: str) -> Feature:
        return Feature.objects.create(
            workspace=story.workspace,
            title=title,
            stage=todo,
            parent=feature,
            source_stage=tasks,
            source_key=key,
        )

    generated("title:task 0", "Task 0")
    generated("title:task 1", "Task 1")

    with pytest.raises(IntegrityError), transaction.atomic():
        generated("title:task 0", "Task 0 again")

    assert Feature.objects.filter(parent=feature, source_stage=tasks).count() == 2


def test_it_allows_the_same_item_key_under_another_parent_or_stage(story, feature):
    other = FeatureFactory.create(workspace=story.workspace)
    todo = _stage(story.workspace, "todo")
    for parent, stage in ((feature, "tasks"), (other, "tasks"), (feature, "architecture")):
        Feature.objects.create(
            workspace=story.workspace,
            title="Task 0",
            stage=todo,
            parent=parent,
            source_stage=_stage(story.workspace, stage),
            source_key="title:task 0",
        )

    assert Feature.objects.filter(source_key="title:task 0").count() == 3


def test_it_refuses_a_dependency_on_itself(feature):
    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.create(feature=feature, depends_on=feature)

    assert not Dependency.objects.exists()


def test_it_refuses_a_duplicate_dependency(story, feature):
    other = FeatureFactory.create(workspace=story.workspace)
    Dependency.objects.create(feature=feature, depends_on=other)

    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.create(feature=feature, depends_on=other)


def test_it_refuses_a_duplicate_builtin_skill_version(db):
    Skill.objects.create(workspace=None, slug="house-style", version=1, name="House style")

    with pytest.raises(IntegrityError), transaction.atomic():
        Skill.objects.create(workspace=None, slug="house-style", version=1, name="Again")

    Skill.objects.create(workspace=None, slug="house-style", version=2, name="Next")
    assert Skill.objects.filter(slug="house-style").count() == 2


def test_it_allows_a_workspace_skill_with_a_builtin_slug_and_version(story):
    Skill.objects.create(workspace=None, slug="house-style", version=1, name="Built in")

    Skill.objects.create(workspace=story.workspace, slug="house-style", version=1, name="Ours")

    with pytest.raises(IntegrityError), transaction.atomic():
        Skill.objects.create(workspace=story.workspace, slug="house-style", version=1, name="x")
