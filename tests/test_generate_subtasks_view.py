"""POST /features/<epic>/subtasks/generate: the Stories page's "Generate subtasks for all
stories" and "Generate for selected" buttons."""

from __future__ import annotations

import json
from typing import Any

import pytest

from features.models import Feature
from pipeline.models import Batch, Run
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories, stories

pytestmark = pytest.mark.django_db


def toast(response: Any) -> dict[str, Any]:
    return json.loads(response["HX-Trigger"])["toast"]


@pytest.fixture
def parent(product_story: Story, eager: Any) -> Feature:
    return epic_with_stories(product_story, eager)


def post(story: Story, user: Any, parent: Feature, data: dict[str, Any]) -> Any:
    return story.client_for(user).post(
        f"/features/{parent.pk}/subtasks/generate", data, headers={"HX-Request": "true"}
    )


def test_it_starts_a_batch_for_all_and_redraws_the_epic_with_its_progress(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    with no_enqueue():
        response = post(product_story, product_story.teammate, parent, {"scope": "all"})

    assert response.status_code == 200
    batch = Batch.objects.get()
    assert toast(response) == {"message": "Generating subtasks for 6 stories", "level": "info"}
    html = response.content.decode()
    assert html.lstrip().startswith(f'<section class="epic-group" id="epic-{parent.pk}"')
    assert f'id="batch-{batch.pk}"' in html
    assert "0 of 6 done" in html
    assert f'hx-get="/w/{product_story.workspace.slug}/batches/{batch.pk}/?watching=1"' in html


def test_it_generates_for_the_ticked_stories(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    ticked = [s.pk for s in stories(parent)[:2]]

    with no_enqueue():
        post(product_story, product_story.owner, parent, {"scope": "selected", "story": ticked})

    assert sorted(Run.objects.filter(batch__isnull=False).values_list("feature_id", flat=True)) == (
        sorted(ticked)
    )


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        ({"scope": "selected"}, 422, "Tick the stories"),
        ({"scope": "selected", "story": "x"}, 400, "Story ids are numbers."),
        ({"scope": "selected", "story": "999999"}, 409, "Not stories of"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    product_story: Story, parent: Feature, data: dict[str, Any], status: int, says: str
) -> None:
    response = post(product_story, product_story.owner, parent, data)

    assert response.status_code == status
    assert says in toast(response)["message"]
    assert toast(response)["level"] == "error"
    assert not Batch.objects.exists()


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("outsider", 404)])
def test_only_members_who_write_can_start_it(
    product_story: Story, parent: Feature, who: str, status: int
) -> None:
    response = post(product_story, getattr(product_story, who), parent, {"scope": "all"})

    assert response.status_code == status
    assert not Batch.objects.exists()


def test_without_htmx_it_goes_back_to_the_stories_page_with_the_message(
    product_story: Story, parent: Feature, no_enqueue: Any
) -> None:
    client = product_story.client_for(product_story.owner)
    with no_enqueue():
        response = client.post(f"/features/{parent.pk}/subtasks/generate", {"scope": "all"})

    assert response.status_code == 302
    assert response["Location"] == f"/w/{product_story.workspace.slug}/stories/#epic-{parent.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "Generating subtasks for 6 stories" in page
