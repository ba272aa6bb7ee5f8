"""The completion's card lock reads the card, its workspace and the workspace's stop stage in
one hand-built statement: what it returns must be what the ORM reads, field by field."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from features.models import Dependency, Feature, Workspace
from pipeline import engine
from pipeline.engine.locks import lock_card_of
from tests.conftest import Story
from tests.engine_helpers import card, stage

pytestmark = pytest.mark.django_db


def _same(ours: Any, theirs: Any) -> None:
    for field in type(theirs)._meta.concrete_fields:
        assert getattr(ours, field.attname) == getattr(theirs, field.attname), field.name


@pytest.mark.parametrize("with_stop_stage", [True, False])
def test_the_locked_card_is_the_card_the_orm_reads(
    story: Story, no_enqueue: Any, django_assert_num_queries: Any, with_stop_stage: bool
) -> None:
    workspace = story.workspace
    stop = stage(workspace, "tasks") if with_stop_stage else None
    Workspace.objects.filter(pk=workspace.pk).update(stop_stage=stop)
    feature = card(workspace, "Checkout")
    Feature.objects.filter(pk=feature.pk).update(health_check={"url": "https://example.com"})
    other = card(workspace, "Payments")
    Dependency.objects.create(feature=feature, depends_on=other)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
    expected = Feature.objects.select_related("workspace", "workspace__stop_stage").get(
        pk=feature.pk
    )

    with transaction.atomic(), django_assert_num_queries(1):
        locked: Any = lock_card_of(run.pk)  # with the two facts set as attributes
        assert locked is not None
        _same(locked, expected)
        _same(locked.workspace, expected.workspace)
        if with_stop_stage:
            _same(locked.workspace.stop_stage, expected.workspace.stop_stage)
        else:
            assert locked.workspace.stop_stage is None
        assert locked.health_check == {"url": "https://example.com"}  # JSON, not its text
        assert (locked.has_dependencies, locked.has_dependents) == (True, False)
    assert not locked._state.adding  # saving it updates, never inserts


def test_a_run_that_does_not_exist_locks_nothing(story: Story) -> None:
    with transaction.atomic():
        assert lock_card_of(10**9) is None
