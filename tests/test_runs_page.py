"""GET /w/<slug>/runs/: the workspace's runs, queue summary and workers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from pipeline import queries
from pipeline.models import Run, WorkerHeartbeat
from tests.factories import FeatureFactory

Status = Run.Status


def _url(story) -> str:
    return reverse("pipeline:runs", args=[story.workspace.slug])


def _status_url(story) -> str:
    return reverse("pipeline:runs_status", args=[story.workspace.slug])


def _run(workspace, stage_key: str = "architecture", status: str = Status.SUCCEEDED, **kwargs):
    # One card per run: a card may hold only one active run.
    feature = kwargs.pop("feature", None) or FeatureFactory.create(workspace=workspace)
    return Run.objects.create(
        workspace=workspace,
        feature=feature,
        stage=workspace.stages.get(key=stage_key),
        status=status,
        attempt=kwargs.pop("attempt", 1),
        **kwargs,
    )


def _run_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="run-(\d+)"', response.content.decode())]


def _summary(response, name: str) -> str:
    match = re.search(rf'<dd data-summary="{name}">(.*?)</dd>', response.content.decode(), re.S)
    assert match, f"no summary {name}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _heartbeat(worker_id: str, **kwargs) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id, hostname="box-1", pid=4242, concurrency=4, **kwargs
    )


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_shows_the_page_to_every_member(story, who):
    run = _run(story.workspace)

    response = story.client_for(getattr(story, who)).get(_url(story))

    assert response.status_code == 200
    assert "pipeline/runs.html" in [t.name for t in response.templates]
    assert _run_ids(response) == [run.pk]
    assert run.feature.title in response.content.decode()
    assert reverse("features:detail", args=[run.feature_id]) in response.content.decode()


def test_it_is_not_found_for_an_outsider(story):
    response = story.client_for(story.outsider).get(_url(story))

    assert response.status_code == 404


def test_it_sends_anonymous_users_to_login(story):
    response = Client().get(_url(story))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_lists_only_this_workspaces_runs_newest_first(story):
    now = timezone.now()
    older = _run(story.workspace, created_at=now - timedelta(minutes=5))
    newer = _run(story.workspace, created_at=now)
    other = story.outsider.memberships.get().workspace
    _run(other, created_at=now)

    response = story.client_for(story.owner).get(_url(story))

    assert _run_ids(response) == [newer.pk, older.pk]


def test_it_paginates_fifty_runs_a_page(story):
    feature = FeatureFactory.create(workspace=story.workspace)
    for _ in range(55):
        _run(story.workspace, feature=feature)
    client = story.client_for(story.owner)

    first = client.get(_url(story))
    second = client.get(_url(story), {"page": 2})

    assert len(_run_ids(first)) == 50
    assert len(_run_ids(second)) == 5
    assert not set(_run_ids(first)) & set(_run_ids(second))
    assert "?page=2" in first.content.decode()


def test_it_filters_by_status(story):
    failed = _run(story.workspace, status=Status.FAILED)
    _run(story.workspace, status=Status.SUCCEEDED)
    running = _run(story.workspace, status=Status.RUNNING)

    response = story.client_for(story.owner).get(_url(story), {"status": "failed"})

    assert _run_ids(response) == [failed.pk]
    assert running.pk not in _run_ids(response)
    assert '<option value="failed" selected>' in response.content.decode()


def test_it_filters_by_stage(story):
    architecture = _run(story.workspace, stage_key="architecture")
    tasks = _run(story.workspace, stage_key="tasks")

    response = story.client_for(story.owner).get(_url(story), {"stage": "tasks"})

    assert _run_ids(response) == [tasks.pk]
    assert architecture.pk not in _run_ids(response)


def test_it_combines_filters_and_ignores_unknown_values(story):
    wanted = _run(story.workspace, stage_key="tasks", status=Status.FAILED)
    _run(story.workspace, stage_key="tasks", status=Status.SUCCEEDED)
    _run(story.workspace, stage_key="architecture", status=Status.FAILED)
    client = story.client_for(story.owner)

    both = client.get(_url(story), {"status": "failed", "stage": "tasks"})
    unknown = client.get(_url(story), {"status": "exploded", "stage": "nowhere"})

    assert _run_ids(both) == [wanted.pk]
    assert len(_run_ids(unknown)) == 3


def test_it_answers_an_htmx_filter_with_just_the_table(story):
    failed = _run(story.workspace, status=Status.FAILED)
    _run(story.workspace, status=Status.SUCCEEDED)

    response = story.client_for(story.owner).get(
        _url(story), {"status": "failed"}, headers={"HX-Request": "true"}
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="runs-table"')
    assert "<html" not in body
    assert _run_ids(response) == [failed.pk]
    assert "HX-Request" in response["Vary"]


def test_it_shows_the_queue_summary(story, monkeypatch):
    _run(story.workspace, status=Status.QUEUED)
    _run(story.workspace, status=Status.QUEUED)
    _run(story.workspace, status=Status.RUNNING)
    monkeypatch.setattr(queries, "check_broker", lambda: {"ok": True, "messages_waiting": 7})

    response = story.client_for(story.owner).get(_url(story))

    assert _summary(response, "queued") == "2"
    assert _summary(response, "running") == "1"
    assert _summary(response, "broker").startswith("7 messages waiting")


def test_it_reads_the_real_broker_queue_length(story):
    response = story.client_for(story.owner).get(_url(story))

    assert re.match(r"\d+ messages? waiting", _summary(response, "broker"))


def test_it_says_unknown_when_the_broker_is_down(story, monkeypatch):
    monkeypatch.setattr(queries, "check_broker", lambda: {"ok": False, "error": "refused"})

    response = story.client_for(story.owner).get(_url(story))

    assert _summary(response, "broker").startswith("unknown")


def test_it_computes_the_failure_rate_from_runs_finished_in_the_last_hour(story):
    now = timezone.now()
    recent = now - timedelta(minutes=10)
    _run(story.workspace, status=Status.FAILED, finished_at=recent)
    for _ in range(3):
        _run(story.workspace, status=Status.SUCCEEDED, finished_at=recent)
    # Finished two hours ago, or still running: neither counts.
    _run(story.workspace, status=Status.FAILED, finished_at=now - timedelta(hours=2))
    _run(story.workspace, status=Status.FAILED, finished_at=now - timedelta(hours=2))
    _run(story.workspace, status=Status.RUNNING)
    # Another workspace's failures are not ours.
    other = story.outsider.memberships.get().workspace
    _run(other, status=Status.FAILED, finished_at=recent)

    response = story.client_for(story.owner).get(_url(story))

    assert _summary(response, "failure-rate") == "25% 1 failed of 4 finished"


def test_it_says_when_no_run_finished_in_the_last_hour(story):
    _run(story.workspace, status=Status.FAILED, finished_at=timezone.now() - timedelta(hours=3))

    response = story.client_for(story.owner).get(_url(story))

    assert _summary(response, "failure-rate") == "no runs finished in the last hour"


def test_it_lists_workers_with_their_health(story):
    now = timezone.now()
    alive = _heartbeat("celery@alive", last_seen=now - timedelta(seconds=12))
    stale = _heartbeat("celery@stale", last_seen=now - timedelta(seconds=90))
    stopped = _heartbeat("celery@stopped", last_seen=now - timedelta(seconds=5), stopped_at=now)

    response = story.client_for(story.viewer).get(_url(story))

    body = response.content.decode()
    for worker, health in [(alive, "alive"), (stale, "stale"), (stopped, "stopped")]:
        row = re.search(rf'<tr id="worker-{worker.pk}".*?</tr>', body, re.S)
        assert row, worker.worker_id
        assert f'class="worker worker-{health}"' in row.group(0)
        assert f'<span class="health health-{health}"' in row.group(0)
        assert worker.worker_id in row.group(0)
    # 12 s when the row was written; a slow machine may render it a second or two later.
    assert re.search(r">1[2-5] s ago<", body)


def test_it_says_how_long_ago_in_readable_units():
    assert queries.ago(12.7) == "12 s ago"
    assert queries.ago(150) == "2 min ago"
    assert queries.ago(3 * 3600) == "3 h ago"
    assert queries.ago(3 * 86400) == "3 d ago"


def test_it_names_only_this_workspaces_runs_on_a_worker(story):
    ours = _run(story.workspace, status=Status.RUNNING)
    other = story.outsider.memberships.get().workspace
    theirs = _run(other, status=Status.RUNNING)
    worker = _heartbeat("celery@busy", current_run_ids=[ours.pk, theirs.pk])

    response = story.client_for(story.owner).get(_url(story))

    row = re.search(rf'<tr id="worker-{worker.pk}".*?</tr>', response.content.decode(), re.S)
    assert row
    assert f'href="#run-{ours.pk}"' in row.group(0)
    assert f"#{theirs.pk}" not in row.group(0)
    assert "1 in other workspaces" in row.group(0)


def test_it_polls_the_summary_and_workers(story):
    _heartbeat("celery@alive")
    client = story.client_for(story.teammate)

    page = client.get(_url(story))
    fragment = client.get(_status_url(story), headers={"HX-Request": "true"})

    assert f'hx-get="{_status_url(story)}" hx-trigger="every 5s"' in page.content.decode()
    assert fragment.status_code == 200
    assert fragment.content.decode().lstrip().startswith('<section id="runs-status"')
    assert "celery@alive" in fragment.content.decode()


def test_it_hides_the_polled_fragment_from_outsiders(story):
    response = story.client_for(story.outsider).get(_status_url(story))

    assert response.status_code == 404


def test_it_shows_admin_actions_only_to_admins(story):
    run = _run(story.workspace, status=Status.RUNNING)
    rescue = reverse("pipeline:rescue", args=[story.workspace.slug, run.pk])

    as_owner = story.client_for(story.owner).get(_url(story))
    as_teammate = story.client_for(story.teammate).get(_url(story))

    assert rescue in as_owner.content.decode()
    assert rescue not in as_teammate.content.decode()


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_it_renders_with_a_constant_number_of_queries(story):
    statuses = [Status.QUEUED, Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]

    def add_runs(n: int) -> None:
        for i in range(n):
            status = statuses[i % len(statuses)]
            _run(
                story.workspace,
                stage_key="architecture" if i % 2 else "tasks",
                status=status,
                finished_at=timezone.now() if status in Run.FINISHED_STATUSES else None,
                error_message="boom" if i % 3 == 0 else "",
            )

    client = story.client_for(story.owner)
    add_runs(3)
    _heartbeat("celery@one", current_run_ids=list(Run.objects.values_list("pk", flat=True)))
    few = _count_queries(client, _url(story))
    add_runs(37)
    WorkerHeartbeat.objects.update(current_run_ids=list(Run.objects.values_list("pk", flat=True)))
    many = _count_queries(client, _url(story))

    assert Run.objects.filter(workspace=story.workspace).count() == 40
    assert few == many
