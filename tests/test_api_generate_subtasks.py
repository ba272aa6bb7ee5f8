"""POST /api/features/{id}/subtasks: generate subtasks for all (or some) of an epic's stories."""

from __future__ import annotations

from typing import Any

import pytest

from features.models import Feature
from pipeline.models import Batch, Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories, stories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_launch_counts() -> None:
    reset_launch_limits()


@pytest.fixture
def parent(product_story: Story, eager: Any) -> Feature:
    return epic_with_stories(product_story, eager)


def post(client: Any, parent: Feature) -> Any:
    """A POST with no body at all, as `curl -X POST` sends it: every story."""
    return client.post(f"/api/features/{parent.pk}/subtasks", content_type="application/json")


def test_it_starts_a_batch_for_every_story(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    with no_enqueue():
        response = post(api_client(product_story.teammate), parent)

    assert response.status_code == 201
    body = response.json()
    batch = Batch.objects.get()
    assert body["batch"]["id"] == batch.pk
    assert body["batch"]["total"] == 6
    assert body["batch"]["done"] == 0
    assert sorted(body["runs"]) == sorted(
        Run.objects.filter(batch=batch).values_list("pk", flat=True)
    )
    assert body["skipped"] == []


def test_it_starts_one_for_the_stories_named(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    chosen = [s.pk for s in stories(parent)[:2]]

    with no_enqueue():
        response = api_client(product_story.owner).post(
            f"/api/features/{parent.pk}/subtasks",
            {"stories": chosen},
            content_type="application/json",
        )

    assert response.status_code == 201
    batch_runs = Run.objects.filter(batch__isnull=False)
    assert sorted(batch_runs.values_list("feature_id", flat=True)) == sorted(chosen)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"stories": ["one"]}, 422, "stories.0"),
        ({"stories": [0]}, 422, "stories.0"),
        ({"story": [1]}, 422, "story"),
    ],
)
def test_bad_bodies_are_refused_and_write_nothing(
    product_story: Story, parent: Feature, body: dict[str, Any], status: int, field: str
) -> None:
    response = api_client(product_story.owner).post(
        f"/api/features/{parent.pk}/subtasks", body, content_type="application/json"
    )

    assert response.status_code == status
    assert error_of(response)["field"] == field
    assert not Batch.objects.exists()


def test_stories_of_another_epic_are_a_conflict(product_story: Story, parent: Feature) -> None:
    response = api_client(product_story.owner).post(
        f"/api/features/{parent.pk}/subtasks",
        {"stories": [parent.pk]},
        content_type="application/json",
    )

    assert response.status_code == 409
    assert error_of(response)["message"] == f"Not stories of “{parent.title}”: #{parent.pk}."


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("outsider", 404)])
def test_roles(product_story: Story, parent: Feature, who: str, status: int) -> None:
    response = post(api_client(getattr(product_story, who)), parent)

    assert response.status_code == status
    assert not Batch.objects.exists()
