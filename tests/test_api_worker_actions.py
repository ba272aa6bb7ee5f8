"""POST /api/workers: health_check for anyone; rescue and cleanup for admins of some workspace.

Both sweeps act server-wide, as beat does: an admin of any workspace may run them, and no
workspace's data comes back, only counts.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipeline.models import Run, WorkerHeartbeat
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card, stage
from tests.factories import UserFactory


def act(client, action: str):
    return client.post("/api/workers", {"action": action}, content_type="application/json")


@pytest.fixture
def stale_run(story):
    return Run.objects.create(
        workspace=story.workspace,
        feature=card(story.workspace, at="architecture"),
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.RUNNING,
        attempt=1,
        max_attempts=5,
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_reports_health_to_any_member(story, who):
    response = act(api_client(getattr(story, who)), "health_check")

    assert response.status_code == 200
    health = response.json()["health"]
    assert {"database", "broker", "workers", "ok"} <= set(health)
    assert health["database"]["ok"] is True


def test_it_lets_the_owner_rescue_stale_runs_now(story, stale_run, no_enqueue):
    with no_enqueue():
        response = act(api_client(story.owner), "rescue")

    assert response.status_code == 200
    assert response.json() == {
        "action": "rescue",
        "health": None,
        "requeued": 1,
        "failed": 0,
        "deleted": None,
    }
    assert Run.objects.get(pk=stale_run.pk).status == "queued"


def test_it_lets_an_admin_of_another_workspace_run_the_sweep(story, stale_run, no_enqueue):
    with no_enqueue():
        response = act(api_client(story.outsider), "rescue")

    assert response.status_code == 200
    assert response.json()["requeued"] == 1


@pytest.mark.parametrize("who", ["teammate", "viewer"])
@pytest.mark.parametrize("action", ["rescue", "cleanup"])
def test_it_refuses_members_who_admin_no_workspace(story, stale_run, who, action):
    response = act(api_client(getattr(story, who)), action)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert Run.objects.get(pk=stale_run.pk).status == "running"


def test_it_refuses_a_user_of_no_workspace(db):
    assert act(api_client(UserFactory.create()), "rescue").status_code == 403


def test_it_cleans_up_heartbeats_stopped_or_silent_for_over_a_day(story):
    now = timezone.now()
    old = now - timedelta(days=1, minutes=1)
    WorkerHeartbeat.objects.create(worker_id="alive", hostname="h", pid=1)
    WorkerHeartbeat.objects.create(
        worker_id="stopped-today", hostname="h", pid=2, stopped_at=now - timedelta(hours=2)
    )
    WorkerHeartbeat.objects.create(
        worker_id="stopped-long-ago", hostname="h", pid=3, stopped_at=old
    )
    WorkerHeartbeat.objects.create(worker_id="silent", hostname="h", pid=4, last_seen=old)

    response = act(api_client(story.owner), "cleanup")

    assert response.status_code == 200
    assert response.json()["deleted"] == 2
    assert set(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == {
        "alive",
        "stopped-today",
    }


def test_it_asks_an_anonymous_caller_to_authenticate(story):
    assert act(api_client(), "health_check").status_code == 401


def test_it_refuses_an_unknown_action(story):
    response = act(api_client(story.owner), "reboot")

    assert response.status_code == 422
    assert error_of(response)["field"] == "action"
