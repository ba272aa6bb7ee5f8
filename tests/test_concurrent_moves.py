"""Many people moving cards into one column at once (PostgreSQL): every card keeps a distinct
place in the column, and no request fails.

8 clients, 2 cards each = 16 cards dropped into one column, at the end and at explicit
positions (the board's drag and drop), through the board's move endpoint.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from features.models import Feature
from tests.engine_helpers import card, stage

CLIENTS = 8
CARDS = 16

pytestmark = pytest.mark.django_db(transaction=True)


def _drop_all(story, with_positions: bool) -> tuple[list[int], list[int]]:
    done = stage(story.workspace, "done")
    # Two cards already in the column, so explicit positions renumber existing rows too.
    for position in range(2):
        there = card(story.workspace, title=f"Already done {position}", at="done")
        Feature.objects.filter(pk=there.pk).update(position=position)
    cards = [card(story.workspace, title=f"Card {i}") for i in range(CARDS)]
    start = threading.Barrier(CLIENTS)

    def client_moves(index: int) -> list[int]:
        try:
            client = Client()
            client.force_login(story.owner if index % 2 else story.teammate)
            start.wait(timeout=30)
            statuses = []
            for feature in cards[index::CLIENTS]:
                data: dict[str, object] = {"stage": done.pk}
                if with_positions:
                    data["position"] = index % 3
                statuses.append(client.post(f"/features/{feature.pk}/move", data).status_code)
            return statuses
        finally:
            connection.close()  # each thread opened its own connection

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for batch in pool.map(client_moves, range(CLIENTS)) for s in batch]
    positions = list(Feature.objects.filter(stage=done).values_list("position", flat=True))
    return statuses, positions


def test_it_gives_every_card_dropped_at_the_end_its_own_position(story):
    statuses, positions = _drop_all(story, with_positions=False)

    assert statuses == [200] * CARDS
    assert len(positions) == CARDS + 2
    assert len(set(positions)) == CARDS + 2


def test_it_serialises_drops_at_explicit_positions_without_errors(story):
    statuses, positions = _drop_all(story, with_positions=True)

    assert statuses == [200] * CARDS
    assert sorted(positions) == list(range(CARDS + 2))
