"""GET /api/workers: every worker's heartbeat; only runs of the caller's workspaces are named.

Workers serve every workspace, so there is no outsider for this list: instead, each caller
sees the ids of their own workspaces' runs and only a count of the others'.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipeline.models import Run, WorkerHeartbeat
from tests.api_helpers import api_client
from tests.engine_helpers import card, stage


@pytest.fixture
def runs(story):
    theirs = story.outsider.memberships.get().workspace
    ours = Run.objects.create(
        workspace=story.workspace,
        feature=card(story.workspace, at="architecture"),
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.RUNNING,
    )
    other = Run.objects.create(
        workspace=theirs,
        feature=card(theirs, at="architecture"),
        stage=stage(theirs, "architecture"),
        status=Run.Status.RUNNING,
    )
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="w1@host", hostname="host", pid=10, current_run_ids=[ours.pk, other.pk]
    )
    WorkerHeartbeat.objects.create(
        worker_id="w0@host",
        hostname="host",
        pid=9,
        last_seen=now - timedelta(minutes=5),
        stopped_at=now - timedelta(minutes=5),
    )
    return ours, other


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_lists_workers_naming_only_the_callers_runs(story, runs, who):
    ours, _ = runs

    response = api_client(getattr(story, who)).get("/api/workers")

    assert response.status_code == 200
    workers = response.json()["workers"]
    assert [(w["worker_id"], w["health"]) for w in workers] == [
        ("w1@host", "alive"),
        ("w0@host", "stopped"),
    ]
    assert (workers[0]["run_ids"], workers[0]["other_runs"]) == ([ours.pk], 1)


def test_it_shows_another_workspace_only_its_own_runs(story, runs):
    _, other = runs

    workers = api_client(story.outsider).get("/api/workers").json()["workers"]

    assert (workers[0]["run_ids"], workers[0]["other_runs"]) == ([other.pk], 1)


def test_it_asks_an_anonymous_caller_to_authenticate(story):
    assert api_client().get("/api/workers").status_code == 401
