"""The live stage: shipping a card is a recorded move, and boards count what is live."""

from __future__ import annotations

import pytest
from django.urls import reverse

from features.models import Feature, StageTransition
from tests.cli_helpers import pipeline, pipeline_json
from tests.conftest import Story
from tests.factories import FeatureFactory

pytestmark = pytest.mark.django_db


def shipped_card(story: Story, title: str = "Invoice extractor", at: str = "done") -> Feature:
    return FeatureFactory.create(
        workspace=story.workspace, title=title, stage=story.workspace.stages.get(key=at)
    )


def test_it_moves_a_done_card_to_live_with_a_note_and_its_actor(delivery_story: Story) -> None:
    feature = shipped_card(delivery_story)

    out = pipeline("--as", "alice", "move", str(feature.pk), "live", "--note", "Shipped")

    assert out == f"#{feature.pk} is now in Live\n"
    feature.refresh_from_db()
    assert feature.stage.key == "live"
    assert feature.stage.is_live
    move = StageTransition.objects.filter(feature=feature).latest("id")
    assert move.from_stage is not None
    assert (move.from_stage.key, move.to_stage.key, move.note) == ("done", "live", "Shipped")
    assert move.actor_label == "alice"


def test_it_starts_no_pipeline_when_a_card_goes_live(delivery_story: Story) -> None:
    feature = shipped_card(delivery_story)

    pipeline("move", str(feature.pk), "live", "--note", "Shipped")

    assert not feature.runs.exists()


def test_it_shows_the_live_count_on_the_cli_board(delivery_story: Story) -> None:
    feature = shipped_card(delivery_story)
    shipped_card(delivery_story, "Still in done")
    pipeline("move", str(feature.pk), "live", "--note", "Shipped")

    out = pipeline("board", "--workspace", "alices-team")

    assert "    LIVE (1)\n" in out
    assert "    DONE (1)\n" in out
    rows = {row["stage"]: row["count"] for row in pipeline_json("board")}
    assert rows["live"] == 1


def test_it_lists_only_the_live_cards(delivery_story: Story) -> None:
    live = shipped_card(delivery_story, "Live one")
    shipped_card(delivery_story, "Not yet")
    pipeline("move", str(live.pk), "live", "--note", "Shipped")

    rows = pipeline_json("list", "--stage", "live", "--workspace", "alices-team")

    assert [(r["id"], r["stage"]) for r in rows] == [(live.pk, "live")]
    assert "Live one" in pipeline("list", "--stage", "live")
    assert "Not yet" not in pipeline("list", "--stage", "live")


def test_it_counts_ga_as_the_product_boards_live_stage(product_story: Story) -> None:
    feature = shipped_card(product_story, at="beta")

    pipeline("move", str(feature.pk), "ga", "--note", "Generally available")

    feature.refresh_from_db()
    assert feature.stage.is_live
    assert "    GA (1)\n" in pipeline("board")


def test_it_shows_the_live_column_and_its_count_on_the_board_page(delivery_story: Story) -> None:
    feature = shipped_card(delivery_story)
    pipeline("move", str(feature.pk), "live", "--note", "Shipped")
    live = delivery_story.workspace.stages.get(key="live")

    response = delivery_story.client_for(delivery_story.owner).get(
        reverse("features:board", args=[delivery_story.workspace.slug])
    )

    html = response.content.decode()
    column = html[html.index(f'id="column-{live.pk}"') :]
    column = column[: column.index("</section>")]
    assert '<span class="name">Live' in column
    assert 'aria-label="1 cards">1</span>' in column
    assert f'id="card-{feature.pk}"' in column


def test_it_keeps_the_live_move_in_the_cards_history(delivery_story: Story) -> None:
    feature = shipped_card(delivery_story)
    pipeline("--as", "alice", "move", str(feature.pk), "live", "--note", "Shipped")

    response = delivery_story.client_for(delivery_story.teammate).get(
        reverse("features:detail", args=[feature.pk])
    )

    history = " ".join(response.content.decode().split())
    assert "Done → Live by alice: Shipped" in history
