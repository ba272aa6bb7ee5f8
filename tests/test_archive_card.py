"""Archiving a card and its subtree: hidden from the boards, runs and history kept; refused
while a run of the subtree is active; viewers and outsiders cannot."""

from __future__ import annotations

import pytest
from django.urls import reverse

from features.actions import do_create_feature
from features.models import Feature
from pipeline import engine
from pipeline.engine.archiving import RunInProgress, archive_card, unarchive_card
from pipeline.models import Run
from tests.engine_helpers import card


def _tree(story):
    root = card(story.workspace, "Checkout page")
    task = do_create_feature(
        story.workspace, title="Build form", user=None, kind=Feature.Kind.TASK, parent=root
    )
    sub = do_create_feature(
        story.workspace, title="Validate card", user=None, kind=Feature.Kind.TASK, parent=task
    )
    return root, task, sub


def _board_titles(story, **params) -> set[str]:
    response = story.client_for(story.teammate).get(
        reverse("features:board", args=[story.workspace.slug]), params
    )
    columns = response.context["feature_columns"] + response.context["work_columns"]
    return {c.title for column in columns for c in column.cards}


def test_it_archives_the_card_and_its_subtree_and_keeps_their_runs(story):
    root, _, _ = _tree(story)
    Run.objects.create(workspace=story.workspace, feature=root, stage=root.stage, status="failed")

    assert archive_card(root, story.teammate) == 3

    assert Feature.objects.filter(archived_at__isnull=False).count() == 3
    assert Run.objects.filter(feature=root).count() == 1
    assert _board_titles(story) == set()
    assert _board_titles(story, archived="1") == {"Checkout page", "Build form", "Validate card"}


def test_it_brings_the_subtree_back(story):
    root, _, _ = _tree(story)
    archive_card(root, story.teammate)
    assert unarchive_card(root, story.teammate) == 3
    assert _board_titles(story) == {"Checkout page", "Build form", "Validate card"}


def test_it_refuses_while_a_run_of_the_subtree_is_active(story):
    root, _, sub = _tree(story)
    Run.objects.create(workspace=story.workspace, feature=sub, stage=sub.stage, status="running")

    with pytest.raises(RunInProgress, match="“Validate card” has a run in progress"):
        archive_card(root, story.teammate)
    assert not Feature.objects.filter(archived_at__isnull=False).exists()


def test_it_refuses_to_launch_an_archived_card(story, no_enqueue):
    root, _, _ = _tree(story)
    archive_card(root, story.teammate)
    with pytest.raises(engine.EngineError, match="archived"):
        engine.launch_pipeline(root, story.teammate)


def test_the_board_button_archives_and_answers_with_the_column(story):
    root, _, _ = _tree(story)
    response = story.client_for(story.teammate).post(
        reverse("features:archive", args=[root.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert f'id="column-{root.stage_id}" hx-swap-oob="true"' in response.content.decode()
    assert "archived" in response["HX-Trigger"]
    root.refresh_from_db()
    assert root.archived_at is not None


def test_the_card_page_says_why_archiving_was_refused(story):
    root, _, _ = _tree(story)
    Run.objects.create(workspace=story.workspace, feature=root, stage=root.stage, status="queued")
    client = story.client_for(story.teammate)
    response = client.post(reverse("features:archive", args=[root.pk]), follow=True)
    assert "has a run in progress (queued): stop it first, then archive." in (
        response.content.decode()
    )
    response = client.post(reverse("features:archive", args=[root.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "stop it first" in response["HX-Trigger"]


def test_viewers_and_outsiders_cannot_archive(story):
    root, _, _ = _tree(story)
    url = reverse("features:archive", args=[root.pk])
    assert story.client_for(story.viewer).post(url).status_code == 403
    assert story.client_for(story.outsider).post(url).status_code == 404
    assert not Feature.objects.filter(archived_at__isnull=False).exists()
