"""POST /api/workers: health_check for anyone (their own runs only); rescue and cleanup for
site administrators only, since both act on every workspace, as beat does.
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


@pytest.fixture
def site_admin(db):
    return UserFactory.create(username="root", is_superuser=True)


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_reports_health_to_any_member(story, who):
    response = act(api_client(getattr(story, who)), "health_check")

    assert response.status_code == 200
    health = response.json()["health"]
    assert {"database", "broker", "workers", "ok"} <= set(health)
    assert health["database"]["ok"] is True


def test_health_names_only_the_callers_runs_and_no_worker_hosts(story, stale_run, site_admin):
    theirs = Run.objects.create(
        workspace=story.outsider.memberships.get().workspace,
        feature=card(story.outsider.memberships.get().workspace, at="architecture"),
        stage=stage(story.outsider.memberships.get().workspace, "architecture"),
        status=Run.Status.RUNNING,
    )
    WorkerHeartbeat.objects.create(
        worker_id="celery@db-host-7",
        hostname="db-host-7",
        pid=4242,
        current_run_ids=[stale_run.pk, theirs.pk],
    )

    mine = act(api_client(story.owner), "health_check").json()["health"]
    full = act(api_client(site_admin), "health_check").json()["health"]

    assert mine["workers"]["running_runs"] == [stale_run.pk]
    assert mine["workers"]["alive"] == 1
    text = str(mine)
    assert "db-host-7" not in text
    assert "4242" not in text
    assert str(theirs.pk) not in str(mine["workers"])
    assert full["workers"]["workers"][0]["worker_id"] == "celery@db-host-7"


def test_it_lets_a_site_administrator_rescue_stale_runs_now(
    story, stale_run, no_enqueue, site_admin
):
    with no_enqueue():
        response = act(api_client(site_admin), "rescue")

    assert response.status_code == 200
    assert response.json() == {
        "action": "rescue",
        "health": None,
        "requeued": 1,
        "failed": 0,
        "deleted": None,
    }
    assert Run.objects.get(pk=stale_run.pk).status == "queued"


@pytest.mark.parametrize("who", ["owner", "outsider", "teammate", "viewer"])
@pytest.mark.parametrize("action", ["rescue", "cleanup"])
def test_it_refuses_workspace_owners_and_members_server_wide_actions(story, stale_run, who, action):
    old = timezone.now() - timedelta(days=2)
    WorkerHeartbeat.objects.create(worker_id="silent", hostname="h", pid=4, last_seen=old)

    response = act(api_client(getattr(story, who)), action)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "site administrators" in error_of(response)["message"]
    assert Run.objects.get(pk=stale_run.pk).status == "running"
    assert WorkerHeartbeat.objects.filter(worker_id="silent").exists()


def test_a_workspace_admin_still_rescues_a_run_of_their_own_workspace(story, stale_run, no_enqueue):
    with no_enqueue():
        response = api_client(story.owner).post(
            f"/api/runs/{stale_run.pk}", {"action": "rescue"}, content_type="application/json"
        )

    assert response.status_code == 200
    assert Run.objects.get(pk=stale_run.pk).status == "queued"


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

    response = act(api_client(UserFactory.create(username="root", is_superuser=True)), "cleanup")

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
