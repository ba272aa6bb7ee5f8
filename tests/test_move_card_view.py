"""Drag and drop / the move menu: the card lands at the index it was dropped at."""

from __future__ import annotations

import json

from django.urls import reverse

from features.models import Feature, StageTransition
from tests.engine_helpers import card, stage


def move(client, feature, stage_id, position=None):
    data = {"stage": stage_id}
    if position is not None:
        data["position"] = position
    return client.post(reverse("features:move", args=[feature.pk]), data, HTTP_HX_REQUEST="true")


def titles(workspace, key):
    return list(
        Feature.objects.filter(stage=stage(workspace, key))
        .order_by("position", "id")
        .values_list("title", flat=True)
    )


def test_it_moves_between_columns_and_redraws_both(story):
    feature = card(story.workspace, "Mover")
    done = stage(story.workspace, "done")
    response = move(story.client_for(story.owner), feature, done.pk)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="column-{done.pk}" hx-swap-oob="true"' in html
    assert f'id="column-{stage(story.workspace, "idea").pk}" hx-swap-oob="true"' in html
    transition = StageTransition.objects.filter(feature=feature).last()
    assert transition is not None
    assert (transition.to_stage, transition.actor_user) == (done, story.owner)


def test_it_puts_the_card_at_the_drop_index_however_sparse_the_numbers(story):
    for title in ["A", "B", "C", "D"]:
        card(story.workspace, title)
    Feature.objects.filter(title="B").update(position=10)
    Feature.objects.filter(title="C").update(position=20)
    Feature.objects.filter(title="D").update(position=30)
    d = Feature.objects.get(title="D")
    idea = stage(story.workspace, "idea")
    move(story.client_for(story.owner), d, idea.pk, position=1)
    assert titles(story.workspace, "idea") == ["A", "D", "B", "C"]
    assert list(
        Feature.objects.filter(stage=idea).order_by("position").values_list("position", flat=True)
    ) == [0, 1, 2, 3]


def test_it_refuses_a_stage_of_another_workspace(story):
    from features.models import Workspace

    feature = card(story.workspace, "Mover")
    foreign = Workspace.objects.get(slug="charlies-team").stages.first()
    assert foreign is not None
    response = move(story.client_for(story.owner), feature, foreign.pk)
    assert response.status_code == 400
    assert json.loads(response["HX-Trigger"])["toast"]["level"] == "error"
    feature.refresh_from_db()
    assert feature.stage.key == "idea"


def test_viewers_cannot_move_cards(story):
    feature = card(story.workspace, "Mover")
    response = move(story.client_for(story.viewer), feature, stage(story.workspace, "done").pk)
    assert response.status_code == 403


def test_a_stage_or_position_that_is_not_a_number_is_a_400(story):
    feature = card(story.workspace, "Stays")
    client = story.client_for(story.owner)
    done = stage(story.workspace, "done")

    for stage_id, position in [("done", None), ("1e3", None), ("²", None), (done.pk, "first")]:
        response = move(client, feature, stage_id, position)
        assert response.status_code == 400
        assert "Choose a stage" in json.loads(response["HX-Trigger"])["toast"]["message"]
    feature.refresh_from_db()
    assert feature.stage.key == "idea"
