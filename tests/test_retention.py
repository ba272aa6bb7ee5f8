"""The daily retention task: history past its configured age goes, in batches; the rest stays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from features.models import HealthCheckResult
from pipeline import retention, tasks
from pipeline.models import Run, RunLog, WorkerHeartbeat
from tests.conftest import Story
from tests.engine_helpers import card
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def days_ago(days: float) -> Any:
    return timezone.now() - timedelta(days=days)


def logged_run(story: Story, *, finished_days_ago: float | None, lines: int = 3) -> Run:
    feature = card(story.workspace, f"Card {finished_days_ago}")
    run = RunFactory.create(
        feature=feature,
        status=Run.Status.SUCCEEDED if finished_days_ago is not None else Run.Status.RUNNING,
        finished_at=days_ago(finished_days_ago) if finished_days_ago is not None else None,
    )
    RunLog.objects.bulk_create(
        RunLog(run=run, seq=i, message=f"line {i}", created_at=days_ago(400)) for i in range(lines)
    )
    return run


def test_it_prunes_each_kind_of_history_past_its_age_in_batches(story: Story, settings: Any):
    settings.RUNWAY_RETAIN_RUN_LOGS_DAYS = 90
    settings.RUNWAY_RETAIN_HEALTH_RESULTS_DAYS = 30
    settings.RUNWAY_RETAIN_WORKERS_DAYS = 7
    old, recent = logged_run(story, finished_days_ago=100), logged_run(story, finished_days_ago=10)
    active = logged_run(story, finished_days_ago=None)  # its lines are old, the run is not
    live = card(story.workspace, "Live card")
    for days in (60, 45, 5):
        HealthCheckResult.objects.create(feature=live, ok=True, checked_at=days_ago(days))
    quiet = card(story.workspace, "Checked once, long ago")
    newest_of_quiet = HealthCheckResult.objects.create(
        feature=quiet, ok=False, checked_at=days_ago(200)
    )
    for name, seen in (("gone@a", 30), ("alive@b", 0)):
        WorkerHeartbeat.objects.create(
            worker_id=name, hostname="h", pid=1, last_seen=days_ago(seen)
        )

    counts = retention.prune_history(batch=2)

    assert counts == {"run_logs": 3, "health_results": 2, "workers": 1}
    assert not RunLog.objects.filter(run=old).exists()
    assert RunLog.objects.filter(run=recent).count() == 3
    assert RunLog.objects.filter(run=active).count() == 3
    assert list(live.health_results.values_list("checked_at__day", flat=True)) == [days_ago(5).day]
    assert list(quiet.health_results.all()) == [newest_of_quiet]  # a card keeps its badge
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["alive@b"]


def test_an_age_of_zero_keeps_that_history(story: Story, settings: Any):
    settings.RUNWAY_RETAIN_RUN_LOGS_DAYS = 0
    run = logged_run(story, finished_days_ago=1000)

    assert tasks.prune_history()["run_logs"] == 0
    assert run.logs.count() == 3


def test_beat_runs_it_daily(settings: Any):
    assert settings.CELERY_BEAT_SCHEDULE["prune-history"] == {
        "task": "pipeline.prune_history",
        "schedule": 86400.0,
    }
