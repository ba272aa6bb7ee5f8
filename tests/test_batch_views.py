"""A batch's progress panel (polled while it runs), and its Stop and Retry buttons."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from features.models import Feature
from pipeline import engine
from pipeline.models import Batch, Run
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories, stories

pytestmark = pytest.mark.django_db


def url(story: Story, batch: Batch, action: str = "") -> str:
    return f"/w/{story.workspace.slug}/batches/{batch.pk}/{action}"


@pytest.fixture
def parent(product_story: Story, eager: Any) -> Feature:
    return epic_with_stories(product_story, eager)


def test_the_panel_shows_what_is_processing_n_of_m_a_two_part_bar_and_elapsed_time(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    with no_enqueue():
        started = engine.generate_subtasks(parent, product_story.owner)
        engine.claim_run(started.runs[0].pk, "w/1")
    Run.objects.filter(pk=started.runs[1].pk).update(status=Run.Status.SUCCEEDED)

    html = product_story.client_for(product_story.viewer).get(url(product_story, started.batch))
    page = html.content.decode()

    assert "Currently processing" in page
    assert 'class="processing"' in page  # the pulsing marker
    assert stories(parent)[0].title in page
    assert "1 of 6 done" in page
    done = re.search(r'<rect class="done" width="(\d+)"', page)
    active = re.search(r'<rect class="active" x="(\d+)" width="(\d+)"', page)
    assert done is not None
    assert active is not None
    assert (done.group(1), active.groups()) == ("17", ("17", "17"))
    assert f'data-since="{started.batch.created_at.isoformat()}"' in page
    assert 'hx-trigger="every 2s"' in page  # polled while it runs


def test_a_watching_page_gets_the_final_toast_once_it_finished(
    product_story: Story, parent: Feature, eager: Any
) -> None:
    with eager():
        started = engine.generate_subtasks(parent, product_story.owner)
    client = product_story.client_for(product_story.viewer)

    watched = client.get(url(product_story, started.batch), {"watching": "1"})
    reloaded = client.get(url(product_story, started.batch))

    triggers = json.loads(watched["HX-Trigger"])
    assert re.fullmatch(r"\d+ subtasks added to 6 stories", triggers["toast"]["message"])
    assert "tree-changed" in triggers
    assert "HX-Trigger" not in reloaded
    assert "every 2s" not in reloaded.content.decode()  # finished: no more polling
    assert triggers["toast"]["message"] in reloaded.content.decode()


def test_stop_and_retry(product_story: Story, parent: Feature, no_enqueue: Any) -> None:
    with no_enqueue():
        started = engine.generate_subtasks(parent, product_story.owner)
    client = product_story.client_for(product_story.teammate)

    with no_enqueue():
        stopped = client.post(url(product_story, started.batch, "stop"))
        retried = client.post(url(product_story, started.batch, "retry"))

    assert stopped.status_code == retried.status_code == 200
    assert json.loads(stopped["HX-Trigger"])["toast"]["message"] == (
        f"Stopped 6 runs of batch #{started.batch.pk}"
    )
    assert json.loads(retried["HX-Trigger"])["toast"]["message"] == (
        f"Retrying 6 cards of batch #{started.batch.pk}"
    )
    runs = Run.objects.filter(batch=started.batch)
    assert sorted(runs.values_list("status", flat=True)) == ["cancelled"] * 6 + ["queued"] * 6


@pytest.mark.parametrize(
    ("who", "action", "status"),
    [("viewer", "stop", 403), ("viewer", "retry", 403), ("outsider", "", 404)],
)
def test_roles(
    product_story: Story, parent: Feature, no_enqueue: Any, who: str, action: str, status: int
) -> None:
    with no_enqueue():
        started = engine.generate_subtasks(parent, product_story.owner)
    client = product_story.client_for(getattr(product_story, who))

    response = (client.post if action else client.get)(url(product_story, started.batch, action))

    assert response.status_code == status
    assert not Run.objects.filter(batch=started.batch, status=Run.Status.CANCELLED).exists()
