"""Each kind of card runs the stages the workspace says: a story plans (acceptance criteria,
subtasks) and stops for people instead of walking the whole product template."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from features.models import Feature, Stage, Workspace
from pipeline import engine
from tests.conftest import Story
from tests.engine_helpers import card, chain

pytestmark = pytest.mark.django_db


def user_story(story: Story, title: str = "Pay by card") -> Feature:
    made = card(story.workspace, title)
    Feature.objects.filter(pk=made.pk).update(kind=Feature.Kind.STORY)
    made.refresh_from_db()
    return made


def test_a_story_runs_its_path_and_stops_for_people(product_story: Story, eager: Any) -> None:
    planned = user_story(product_story)

    with eager():
        launched = engine.launch_pipeline(planned, product_story.owner)

    assert launched.pipeline == ["tickets"]
    assert [(r.stage.key, r.status) for r in chain(planned)] == [("tickets", "succeeded")]
    planned.refresh_from_db()
    assert planned.stage.key == "build"  # it stops for people: building is theirs
    names = set(planned.artifacts.values_list("name", flat=True))
    assert names == {"acceptance-criteria.md", "tasks.json"}
    moves = [
        (t.from_stage.key if t.from_stage else None, t.to_stage.key)
        for t in planned.transitions.all()
    ]
    assert moves == [(None, "inbox"), ("inbox", "tickets"), ("tickets", "build")]


def test_other_kinds_still_walk_the_template(product_story: Story, no_enqueue: Any) -> None:
    with no_enqueue():
        launched = engine.launch_pipeline(card(product_story.workspace), product_story.owner)

    assert launched.pipeline == [
        "inbox", "discovery", "prd", "design", "prototype", "validate", "tickets",
    ]  # fmt: skip


def kinds_form(who: Story, **ticked: list[str]) -> dict[str, list[str]]:
    """The form as the page shows it (every kind's stages, as they are now), with changes."""
    paths = Workspace.objects.get(pk=who.workspace.pk).kind_stages
    data = {}
    for kind in Feature.Kind.values:
        board = Stage.Board.WORK if kind == Feature.Kind.TASK else Stage.Board.FEATURE
        keys = who.workspace.stages.filter(board=board).order_by("position")
        data[f"kind-{kind}"] = paths.get(kind) or list(keys.values_list("key", flat=True))
    data.update({f"kind-{kind}": keys for kind, keys in ticked.items()})
    return data


def test_the_settings_page_changes_a_kinds_stages(product_story: Story, no_enqueue: Any) -> None:
    client = product_story.client_for(product_story.owner)

    response = client.post(
        f"/w/{product_story.workspace.slug}/settings/kinds",
        kinds_form(
            product_story,
            story=["tickets", "prd"],
            epic=[s.key for s in feature_stages(product_story)],
        ),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    workspace = Workspace.objects.get(pk=product_story.workspace.pk)
    # Board order; a kind given every stage runs the whole board (and needs no entry).
    assert workspace.kind_stages["story"] == ["prd", "tickets"]
    assert "epic" not in workspace.kind_stages
    with no_enqueue():
        launched = engine.launch_pipeline(user_story(product_story), product_story.owner)
    assert launched.pipeline == ["prd", "tickets"]


def feature_stages(story: Story) -> list[Stage]:
    return list(story.workspace.stages.filter(board=Stage.Board.FEATURE).order_by("position"))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"story": []}, "Give a story at least one stage"),
        ({"story": ["nowhere"]}, "No stage 'nowhere' on the board a story runs on"),
        ({"task": ["tickets"]}, "No stage 'tickets' on the board a task runs on"),
        ({"saga": ["tickets"]}, "Unknown kind 'saga'"),
    ],
)
def test_bad_stages_are_refused_and_nothing_is_saved(
    product_story: Story, changes: dict[str, Any], says: str
) -> None:
    with pytest.raises(engine.EngineError, match=says):
        engine.update_workspace_settings(product_story.workspace, {"kind_stages": changes})

    assert Workspace.objects.get(pk=product_story.workspace.pk).kind_stages == {
        "story": ["tickets"]
    }


def test_the_settings_form_says_what_to_fix(product_story: Story) -> None:
    response = product_story.client_for(product_story.owner).post(
        f"/w/{product_story.workspace.slug}/settings/kinds",
        kinds_form(product_story, story=[]),  # nothing ticked for stories
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 422
    assert "Give a story at least one stage" in response.content.decode()


def test_members_cannot_change_it(product_story: Story) -> None:
    response = product_story.client_for(product_story.teammate).post(
        f"/w/{product_story.workspace.slug}/settings/kinds", {"kind-story": ["prd"]}
    )

    assert response.status_code == 403


def test_existing_workspaces_get_delivery_stages_and_the_story_path(product_story: Story) -> None:
    workspace = product_story.workspace
    Workspace.objects.filter(pk=workspace.pk).update(kind_stages={})
    Stage.objects.filter(workspace=workspace).update(is_delivery=False)
    migration = importlib.import_module("features.migrations.0008_trees")

    migration.mark_delivery_and_story_paths(apps, None)

    workspace.refresh_from_db()
    assert workspace.kind_stages == {"story": ["tickets"]}
    delivery = set(workspace.stages.filter(is_delivery=True).values_list("key", flat=True))
    assert delivery == {"build", "alpha", "beta", "ga", "doing", "review", "finished"}
