"""When the last worker dies: the board says so within 20 s, and its card stops "Running"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from django.urls import reverse

from pipeline import engine
from pipeline.models import RunLog
from tests.engine_helpers import card
from tests.integration.processes import Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def workers_only(transactional_db: None, broker: redis.Redis) -> Iterator[Stack]:
    # No beat: its rescue sweep would requeue the run before the board could show it lost.
    running = Stack()
    yield running
    running.stop()


def test_the_board_shows_no_worker_and_a_lost_card_within_20_s(story, workers_only) -> None:
    worker = workers_only.start_worker()
    feature = card(story.workspace, description="Slow. [offline:delay=60@write-architecture]")
    launched = engine.launch_pipeline(feature, story.owner)
    wait_until(
        lambda: RunLog.objects.filter(run=launched.run, message__startswith="Step 1/1").exists(),
        timeout=60,
        what="the step to start",
    )
    client = story.client_for(story.owner)
    poll_url = reverse("features:worker_banner", args=[story.workspace.slug])
    assert "No worker is running" not in client.get(poll_url).content.decode()

    worker.kill()
    died_at = time.monotonic()

    def board_says_lost() -> str | None:
        html = client.get(poll_url).content.decode()
        return html if "No worker is running" in html and "Worker lost" in html else None

    html = wait_until(board_says_lost, timeout=60, what="the board to show the worker lost")
    assert time.monotonic() - died_at < 20
    card_html = html[html.index(f'id="card-{feature.pk}"') :].split("</article>")[0]
    assert "Worker lost — will be rescued" in card_html
    assert 'class="elapsed"' not in card_html
