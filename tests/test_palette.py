"""The command palette's search: cards by title or #id, with the actions the member may run."""

from __future__ import annotations

from django.urls import reverse

from pipeline.engine.archiving import archive_card
from pipeline.models import Run
from tests.engine_helpers import card


def _search(story, user, q: str):
    url = reverse("features:palette", args=[story.workspace.slug])
    return story.client_for(user).get(url, {"q": q})


def test_it_finds_cards_by_title_or_id_with_their_actions(story):
    wanted = card(story.workspace, "Checkout page")
    card(story.workspace, "Login form")

    by_title = _search(story, story.teammate, "checkout").json()["cards"]
    by_id = _search(story, story.teammate, f"#{wanted.pk}").json()["cards"]

    assert [c["id"] for c in by_title] == [c["id"] for c in by_id] == [wanted.pk]
    labels = [a["label"] for a in by_title[0]["actions"]]
    assert labels[:2] == ["Launch", "Open"]
    assert "Move to Architecture" in labels
    assert "Move to Idea" not in labels  # where it is already


def test_it_offers_stop_for_a_card_with_an_active_run(story):
    running = card(story.workspace, "Checkout page")
    Run.objects.create(
        workspace=story.workspace, feature=running, stage=running.stage, status="running"
    )
    labels = [
        a["label"] for a in _search(story, story.teammate, "checkout").json()["cards"][0]["actions"]
    ]
    assert labels[0] == "Stop"


def test_viewers_only_open_and_outsiders_see_nothing(story):
    card(story.workspace, "Checkout page")
    found = _search(story, story.viewer, "checkout").json()["cards"]
    assert [a["label"] for a in found[0]["actions"]] == ["Open"]
    assert _search(story, story.outsider, "checkout").status_code == 404


def test_it_leaves_out_archived_cards(story):
    archived = card(story.workspace, "Checkout page")
    archive_card(archived, story.owner)
    assert _search(story, story.teammate, "checkout").json()["cards"] == []
