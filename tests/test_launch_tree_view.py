"""POST /features/<epic>/tree/launch: the "Launch whole tree" button."""

from __future__ import annotations

import json
from typing import Any

import pytest

from features.models import Feature
from pipeline.models import Batch, Run
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories

pytestmark = pytest.mark.django_db


@pytest.fixture
def parent(product_story: Story, eager: Any) -> Feature:
    return epic_with_stories(product_story, eager)


def test_it_launches_the_tree_and_shows_what_waits(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    client = product_story.client_for(product_story.teammate)
    with no_enqueue():
        response = client.post(f"/features/{parent.pk}/tree/launch", headers={"HX-Request": "true"})

    assert response.status_code == 200
    batch = Batch.objects.get(kind=Batch.Kind.TREE)
    statuses = sorted(Run.objects.filter(batch=batch).values_list("status", flat=True))
    assert statuses == ["queued"] + ["waiting"] * 5  # the first story, then the rest in order
    assert json.loads(response["HX-Trigger"])["toast"]["message"].startswith(
        "Whole tree launched: 6 cards"
    )
    assert "Whole tree of" in response.content.decode()


def test_a_second_launch_is_refused_with_the_reason(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    client = product_story.client_for(product_story.owner)
    with no_enqueue():
        client.post(f"/features/{parent.pk}/tree/launch", headers={"HX-Request": "true"})
        again = client.post(f"/features/{parent.pk}/tree/launch", headers={"HX-Request": "true"})

    assert again.status_code == 409
    assert "is running already" in json.loads(again["HX-Trigger"])["toast"]["message"]
    assert Batch.objects.count() == 1


def test_a_viewer_cannot_launch_it(product_story: Story, parent: Feature) -> None:
    response = product_story.client_for(product_story.viewer).post(
        f"/features/{parent.pk}/tree/launch"
    )

    assert response.status_code == 403
    assert not Batch.objects.exists()
