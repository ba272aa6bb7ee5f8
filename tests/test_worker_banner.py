"""The board's worker poll: the "no worker" banner, and running cards whose worker was lost.

A dead worker sends no event, so the board asks every few seconds. A worker (or a running run)
silent for RUNWAY_WORKER_STALE_SECONDS counts as lost; with the poll interval that must stay
within the 20 s the board promises after the last worker dies.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config.settings import base as defaults
from pipeline import engine
from pipeline.models import WORKER_STALE_AFTER, Run
from tests.conftest import Story
from tests.engine_helpers import card
from tests.factories import WorkerHeartbeatFactory

pytestmark = pytest.mark.django_db


def poll(story: Story, user=None) -> str:
    client = story.client_for(user or story.owner)
    response = client.get(reverse("features:worker_banner", args=[story.workspace.slug]))
    assert response.status_code == 200
    return response.content.decode()


def running_run(story: Story, no_enqueue, *, silent_for: timedelta) -> Run:
    feature = card(story.workspace)
    with no_enqueue():
        launched = engine.launch_pipeline(feature, story.owner)
    run = engine.claim_run(launched.run.pk, "worker-1@test/4242")
    assert run is not None
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - silent_for)
    return run


def test_it_says_nothing_while_a_worker_heartbeats(story: Story) -> None:
    WorkerHeartbeatFactory.create(last_seen=timezone.now() - timedelta(seconds=3))

    assert "No worker is running" not in poll(story)


def test_it_says_no_worker_once_the_last_heartbeat_is_stale(story: Story) -> None:
    WorkerHeartbeatFactory.create(last_seen=timezone.now() - WORKER_STALE_AFTER)

    assert "No worker is running" in poll(story)


def test_it_says_no_worker_when_the_worker_stopped(story: Story) -> None:
    WorkerHeartbeatFactory.create(stopped_at=timezone.now())

    assert "No worker is running" in poll(story)


def test_it_polls_often_enough_to_show_a_dead_worker_within_20_s(story: Story) -> None:
    board = story.client_for(story.owner).get(
        reverse("features:board", args=[story.workspace.slug])
    )
    every = re.search(r'id="worker-banner"[^>]*hx-trigger="every (\d+)s"', board.content.decode())
    assert every is not None
    # The last beat came at most a heartbeat before the death: stale limit + one poll bounds it.
    # (The defaults every process gets; the test settings slow in-process heartbeats down.)
    assert defaults.RUNWAY_WORKER_STALE_SECONDS + int(every[1]) <= 20
    assert defaults.RUNWAY_HEARTBEAT_SECONDS * 3 <= defaults.RUNWAY_WORKER_STALE_SECONDS


def test_it_redraws_a_card_whose_worker_was_lost(story: Story, no_enqueue) -> None:
    run = running_run(story, no_enqueue, silent_for=WORKER_STALE_AFTER + timedelta(seconds=1))

    html = poll(story)

    card_html = html[html.index(f'id="card-{run.feature_id}"') :]
    assert (
        'hx-swap-oob="true"'
        in html[html.index("<article") : html.index(">", html.index("<article"))]
    )
    assert "Worker lost — will be rescued" in card_html
    assert 'class="elapsed"' not in card_html  # no ticking timer for a dead worker
    assert "worker-lost" in html


def test_it_says_a_lost_run_on_its_last_attempt_will_fail(story: Story, no_enqueue) -> None:
    run = running_run(story, no_enqueue, silent_for=WORKER_STALE_AFTER * 2)
    Run.objects.filter(pk=run.pk).update(attempt=run.max_attempts)

    assert "Worker lost — will be marked failed" in poll(story)


def test_it_leaves_a_heartbeating_run_alone(story: Story, no_enqueue) -> None:
    run = running_run(story, no_enqueue, silent_for=timedelta(seconds=2))

    assert f'id="card-{run.feature_id}"' not in poll(story)


def test_the_board_shows_a_lost_run_as_lost_and_a_live_one_as_processing(
    story: Story, no_enqueue
) -> None:
    lost = running_run(story, no_enqueue, silent_for=WORKER_STALE_AFTER * 2)
    live = running_run(story, no_enqueue, silent_for=timedelta(seconds=1))

    html = (
        story.client_for(story.owner)
        .get(reverse("features:board", args=[story.workspace.slug]))
        .content.decode()
    )

    lost_card = html[html.index(f'id="card-{lost.feature_id}"') :].split("</article>")[0]
    live_card = html[html.index(f'id="card-{live.feature_id}"') :].split("</article>")[0]
    assert "Worker lost" in lost_card
    assert "Running" not in lost_card
    assert "Processing" in live_card
    assert 'class="elapsed"' in live_card


def test_it_shows_an_outsider_nothing(story: Story, no_enqueue) -> None:
    running_run(story, no_enqueue, silent_for=WORKER_STALE_AFTER * 2)
    client = story.client_for(story.outsider)

    response = client.get(reverse("features:worker_banner", args=[story.workspace.slug]))

    assert response.status_code == 404
