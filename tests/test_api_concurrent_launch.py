"""Many API launches of one card at once: one pipeline, and a clear 409 for every other caller."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from pipeline.models import Run
from tests.api_helpers import error_of, reset_launch_limits, token_for
from tests.engine_helpers import card

CALLERS = 8


@pytest.mark.django_db(transaction=True)
def test_it_makes_one_pipeline_and_409s_for_the_rest(story, settings, monkeypatch):
    settings.RUNWAY_API_LAUNCHES_PER_MINUTE = 100
    reset_launch_limits()
    enqueued: list[int] = []  # no broker: record what would be sent once committed
    monkeypatch.setattr("pipeline.engine.runs.enqueue", lambda run_id, **_: enqueued.append(run_id))
    feature = card(story.workspace)
    tokens = [token_for(user) for user in (story.owner, story.teammate) * (CALLERS // 2)]
    start = threading.Barrier(CALLERS)

    def launch(token: str):
        try:
            client = Client(headers={"Authorization": f"Bearer {token}"})
            start.wait(timeout=30)
            return client.post(f"/api/features/{feature.pk}/launch")
        finally:
            connection.close()  # each thread opened its own connection

    with ThreadPoolExecutor(CALLERS) as pool:
        responses = list(pool.map(launch, tokens))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (CALLERS - 1)
    run = Run.objects.get(feature=feature)
    assert [r.json()["run_id"] for r in responses if r.status_code == 201] == [run.pk]
    assert {error_of(r)["code"] for r in responses if r.status_code == 409} == {"already_running"}
    assert enqueued == [run.pk]
