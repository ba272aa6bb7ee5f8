"""GET /healthz: database, broker (the real Redis) and workers, 503 when a part is down; to an
anonymous caller only "ok" or "failing" per part, never a run id, worker host or pid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipeline import engine
from pipeline.health import check_sweeps
from pipeline.models import Sweep, WorkerHeartbeat


def _heartbeat(worker_id: str = "celery@box", **kwargs) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id, hostname="box", pid=4242, concurrency=2, **kwargs
    )


def _get() -> tuple[int, dict]:
    response = Client().get("/healthz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _swept(request: pytest.FixtureRequest) -> None:
    # The sweeps ran a moment ago, unless a test says otherwise.
    if "not_swept" not in request.keywords:
        engine.sweep_if_due("beat")


def test_it_reports_database_broker_and_workers():
    _, report = _get()

    assert report == {
        "ok": False,
        "database": "ok",
        "broker": "ok",
        "workers": "failing",
        "sweeps": "ok",
    }


def test_it_answers_503_when_no_worker_is_alive():
    status, report = _get()

    assert status == 503
    assert report["ok"] is False
    assert report["workers"] == "failing"


def test_it_answers_200_with_a_fresh_heartbeat_and_names_nothing():
    _heartbeat(last_seen=timezone.now(), current_run_ids=[7])

    status, report = _get()

    assert status == 200
    assert report == {"ok": True, "database": "ok", "broker": "ok", "workers": "ok", "sweeps": "ok"}


def test_it_counts_a_stale_heartbeat_as_dead():
    _heartbeat(last_seen=timezone.now() - timedelta(minutes=2))

    status, report = _get()

    assert status == 503
    assert report["workers"] == "failing"


def test_it_counts_a_stopped_worker_as_dead():
    _heartbeat(last_seen=timezone.now(), stopped_at=timezone.now())

    status, report = _get()

    assert status == 503
    assert report["workers"] == "failing"


def test_a_failing_part_says_failing_without_its_error(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    _heartbeat(last_seen=timezone.now())

    status, report = _get()

    assert status == 503
    assert report == {
        "ok": False,
        "database": "ok",
        "broker": "failing",
        "workers": "ok",
        "sweeps": "ok",
    }


def test_it_is_not_cached():
    response = Client().get("/healthz")

    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_it_refuses_post():
    assert Client().post("/healthz").status_code == 405


@pytest.mark.not_swept
def test_it_fails_when_the_sweeps_never_ran():
    _heartbeat(last_seen=timezone.now())

    status, report = _get()
    details = check_sweeps()  # what a site administrator's health check shows

    assert status == 503
    assert report["sweeps"] == "failing"
    assert details["ok"] is False
    assert details["last_ran_at"] is None
    assert "never run" in details["error"]


@pytest.mark.not_swept
def test_it_fails_when_the_sweeps_are_late_and_passes_when_a_worker_ran_them(settings):
    _heartbeat(last_seen=timezone.now())
    Sweep.objects.create(
        name="recovery",
        started_at=timezone.now(),
        finished_at=timezone.now() - timedelta(minutes=5),
    )

    late_status, late = _get()
    late_details = check_sweeps()
    Sweep.objects.all().update(started_at=timezone.now() - timedelta(minutes=5))
    engine.sweep_if_due("w1@box")
    status, report = _get()
    details = check_sweeps()

    assert (late_status, late["sweeps"]) == (503, "failing")
    assert late_details["seconds_ago"] >= 299
    assert "the recovery sweeps last ran" in late_details["error"]
    assert (status, report["sweeps"]) == (200, "ok")
    assert (details["ok"], details["by"]) == (True, "w1@box")
