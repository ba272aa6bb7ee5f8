"""Bulk actions with real processes: a bulk retry is admitted two at a time by a workspace
limit of 2, and a job whose processor is SIGKILLed mid-item is resumed by the recovery sweep
without acting on any run twice."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from features.models import Feature, Workspace
from pipeline import bulk
from pipeline.models import BulkAction, Run
from tests.bulk_helpers import outage
from tests.integration.processes import Process, Stack, wait_until

pytestmark = pytest.mark.integration
Status = Run.Status


@pytest.fixture
def quick_stack(transactional_db: None, broker: redis.Redis) -> Iterator[Stack]:
    running = Stack(extra_env={"RUNWAY_BULK_STALE_SECONDS": "2"})
    yield running
    running.stop()


def confirm(story, action: str = "retry") -> BulkAction:
    found = bulk.parse_filter({}, story.workspace, action)
    count = bulk.preview(story.workspace, action, found).count
    return bulk.start_bulk_action(
        story.workspace, story.owner, action, found, expected_count=count, source="api"
    )


def test_a_bulk_retry_of_eight_runs_never_runs_more_than_the_workspace_limit(
    story, quick_stack
) -> None:
    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=2)
    failed = outage(story.workspace, 8)
    Feature.objects.filter(runs__in=failed).update(description="Slow. [offline:delay=0.5]")
    quick_stack.start_worker(concurrency=4)  # more processes than the workspace may use
    job = confirm(story)

    most = 0
    deferred = False

    def all_succeeded() -> bool:
        nonlocal most, deferred
        retries = Run.objects.filter(parent_run__in=failed)
        most = max(most, retries.filter(status=Status.RUNNING).count())
        deferred = deferred or retries.filter(error_kind=Run.ErrorKind.DEFERRED).exists()
        return retries.filter(status=Status.SUCCEEDED).count() == 8

    wait_until(all_succeeded, timeout=120, what="the 8 retries to succeed")
    job.refresh_from_db()
    assert (job.status, job.done) == ("succeeded", 8)
    assert most == 2
    assert deferred  # admission held the rest back rather than starting them all


KILLER = textwrap.dedent(
    """
    import os, signal, django
    django.setup()
    from pipeline import bulk
    from pipeline.bulk import jobs
    record, calls = jobs._record, []
    def dies_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # run 3 retried, not yet marked: the transaction is open
            os.kill(os.getpid(), signal.SIGKILL)
        record(*args, **kwargs)
    jobs._record = dies_on_the_third
    bulk.process_chunk({job_id}, chunk=100)
    """
)


def test_a_job_killed_mid_item_is_resumed_by_the_sweep_and_acts_on_each_run_once(
    story, quick_stack, broker
) -> None:
    failed = outage(story.workspace, 6)
    job = confirm(story)
    broker.delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # its message is lost too

    killer = Process(
        "bulk-killer", [sys.executable, "-c", KILLER.format(job_id=job.pk)], quick_stack.env
    )
    wait_until(lambda: not killer.alive(), timeout=60, what="the processor to die")
    assert killer.popen.returncode == -9, killer.log()
    job.refresh_from_db()
    assert (job.status, job.done) == ("running", 2)
    assert Run.objects.filter(parent_run__in=failed).count() == 2  # run 3's retry rolled back

    quick_stack.start_beat()
    quick_stack.start_worker()

    def finished() -> BulkAction | None:
        job.refresh_from_db()
        return job if job.status == "succeeded" else None

    wait_until(finished, timeout=90, what="the sweep to resume the job")
    assert (job.done, job.skipped, job.failed) == (6, 0, 0)
    for run in failed:
        assert Run.objects.filter(parent_run=run).count() == 1
    wait_until(
        lambda: Run.objects.filter(parent_run__in=failed, status=Status.SUCCEEDED).count() == 6,
        timeout=90,
        what="every retry to finish",
    )
