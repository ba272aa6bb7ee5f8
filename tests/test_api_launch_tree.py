"""POST /api/features/{id}/tree/launch: launch an epic's whole tree."""

from __future__ import annotations

from typing import Any

import pytest

from features.models import Feature
from pipeline.models import Batch, Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.conftest import Story
from tests.tree_helpers import epic, epic_with_stories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_launch_counts() -> None:
    reset_launch_limits()


def test_it_launches_the_tree_in_order(product_story: Story, eager: Any, no_enqueue: Any) -> None:
    parent = epic_with_stories(product_story, eager)

    with no_enqueue():
        response = api_client(product_story.owner).post(f"/api/features/{parent.pk}/tree/launch")

    assert response.status_code == 201
    body = response.json()
    assert body["batch"]["kind"] == "tree"
    assert sorted(c["state"] for c in body["batch"]["cards"]) == ["queued"] + ["waiting"] * 5
    assert len(body["runs"]) == 6


def test_an_epic_without_stories_runs_its_own_pipeline_first(
    product_story: Story, no_enqueue: Any
) -> None:
    parent = epic(product_story.workspace)

    with no_enqueue():
        response = api_client(product_story.owner).post(f"/api/features/{parent.pk}/tree/launch")

    assert response.status_code == 201
    (run,) = Run.objects.all()
    assert (run.feature_id, run.stage.key, run.batch_id) == (
        parent.pk,
        "inbox",
        response.json()["batch"]["id"],
    )


def test_a_running_tree_is_a_conflict(product_story: Story, eager: Any, no_enqueue: Any) -> None:
    parent = epic_with_stories(product_story, eager)
    client = api_client(product_story.owner)
    with no_enqueue():
        client.post(f"/api/features/{parent.pk}/tree/launch")
        again = client.post(f"/api/features/{parent.pk}/tree/launch")

    assert again.status_code == 409
    assert error_of(again)["code"] == "already_running"
    assert Batch.objects.count() == 1


def test_a_viewer_is_refused(product_story: Story) -> None:
    parent: Feature = epic(product_story.workspace)

    response = api_client(product_story.viewer).post(f"/api/features/{parent.pk}/tree/launch")

    assert response.status_code == 403
    assert not Run.objects.exists()
