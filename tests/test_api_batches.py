"""GET /api/batches, GET /api/batches/{id}, POST /api/batches/{id}/stop and /retry."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline import engine
from pipeline.models import Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_launch_counts() -> None:
    reset_launch_limits()


@pytest.fixture
def batch(product_story: Story, eager: Any, no_enqueue: Any) -> Any:
    parent = epic_with_stories(product_story, eager)
    with no_enqueue():
        return engine.generate_subtasks(parent, product_story.owner).batch


def test_it_lists_and_shows_a_batchs_progress(product_story: Story, batch: Any) -> None:
    client = api_client(product_story.viewer)

    listed = client.get("/api/batches?workspace=alices-team").json()
    shown = client.get(f"/api/batches/{batch.pk}").json()

    assert [b["id"] for b in listed] == [batch.pk]
    assert (shown["total"], shown["done"], shown["pending"], shown["finished_at"]) == (
        6,
        0,
        6,
        None,
    )
    assert {c["state"] for c in shown["cards"]} == {"queued"}
    assert api_client(product_story.outsider).get(f"/api/batches/{batch.pk}").status_code == 404


def test_stop_then_retry(product_story: Story, batch: Any, no_enqueue: Any) -> None:
    client = api_client(product_story.teammate)

    with no_enqueue():
        stopped = client.post(f"/api/batches/{batch.pk}/stop")
        again = client.post(f"/api/batches/{batch.pk}/stop")
        retried = client.post(f"/api/batches/{batch.pk}/retry")

    assert stopped.status_code == 200
    assert stopped.json()["stopped"] == 6
    assert stopped.json()["batch"]["stopped_at"] is not None
    assert again.status_code == 409
    assert "Nothing to stop" in error_of(again)["message"]
    assert retried.status_code == 200
    assert len(retried.json()["runs"]) == 6
    assert Run.objects.filter(batch=batch, status=Run.Status.QUEUED).count() == 6


def test_a_viewer_cannot_stop_it(product_story: Story, batch: Any) -> None:
    response = api_client(product_story.viewer).post(f"/api/batches/{batch.pk}/stop")

    assert response.status_code == 403
    assert not Run.objects.filter(status=Run.Status.CANCELLED).exists()
