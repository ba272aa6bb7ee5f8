"""Bulk jobs: confirmed with the dry run's count, act on exactly the matching runs through the
engine (so admission limits apply), report progress, and resume after a worker dies."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from features.models import Workspace
from pipeline import bulk, engine
from pipeline.bulk import jobs
from pipeline.models import BulkAction, BulkActionItem, Run
from tests.bulk_helpers import outage, run_in

Status = Run.Status


def start(story, action="retry", expected=None, **raw):
    ws = story.workspace
    found = bulk.parse_filter(raw, ws, action)
    if expected is None:
        expected = bulk.preview(ws, action, found).count
    return bulk.start_bulk_action(
        ws, story.owner, action, found, expected_count=expected, source="web"
    )


def drain(job, chunk=2):
    while bulk.process_chunk(job.pk, chunk=chunk):
        pass
    job.refresh_from_db()
    return job


def test_bulk_retry_acts_on_exactly_the_matching_runs(story, no_enqueue):
    failed = outage(story.workspace, 4)
    other_provider = run_in(story.workspace, "OpenAI", provider="openai")
    succeeded = run_in(story.workspace, "Fine", status=Status.SUCCEEDED, provider="anthropic")
    with no_enqueue():
        job = drain(start(story, provider="anthropic"))

    assert (job.status, job.total, job.done, job.skipped, job.failed) == ("succeeded", 4, 4, 0, 0)
    for run in failed:
        (child,) = Run.objects.filter(parent_run=run)
        assert child.status == Status.QUEUED
        assert child.triggered_by == story.owner
    assert not Run.objects.filter(parent_run__in=[other_provider, succeeded]).exists()
    assert job.finished_at is not None
    assert job.filter == {"provider": "anthropic"}


def test_bulk_cancel_stops_exactly_the_matching_runs(story, no_enqueue):
    queued = [run_in(story.workspace, f"Q{i}", status=Status.QUEUED) for i in range(3)]
    keep = run_in(story.workspace, "Other stage", status=Status.QUEUED, stage="tasks")
    with no_enqueue():
        job = drain(start(story, "cancel", stage="architecture"))

    assert (job.done, job.total) == (3, 3)
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in queued])} == {"cancelled"}
    keep.refresh_from_db()
    assert keep.status == Status.QUEUED


def test_bulk_rescue_requeues_the_running_runs(story, no_enqueue):
    running = [run_in(story.workspace, f"R{i}", status=Status.RUNNING) for i in range(2)]
    with no_enqueue():
        job = drain(start(story, "rescue"))

    assert job.done == 2
    for run in running:
        run.refresh_from_db()
        assert (run.status, run.error_kind) == (Status.QUEUED, Run.ErrorKind.LOST)
        assert run.logs.filter(message__startswith="Rescued by alice").exists()


def test_a_run_that_changed_meanwhile_is_skipped_with_the_reason(story, no_enqueue):
    first, _ = outage(story.workspace, 2)
    with no_enqueue():
        job = start(story, provider="anthropic")
        engine.retry_run(first, story.teammate)  # someone else got to it first
        job = drain(job)

    assert (job.status, job.done, job.skipped) == ("succeeded", 1, 1)
    item = job.items.get(run=first)
    assert item.outcome == "skipped"
    assert item.message == "This card already has a run in progress."
    assert Run.objects.filter(parent_run=first).count() == 1


def test_progress_is_kept_chunk_by_chunk(story, no_enqueue):
    outage(story.workspace, 5)
    with no_enqueue():
        job = start(story)
        assert bulk.process_chunk(job.pk, chunk=2) is True
        job.refresh_from_db()
        assert (job.status, job.done, job.progress_percent) == ("running", 2, 40)
        assert bulk.job_dict(job)["pending"] == 3
        assert bulk.progress_line(job) == (
            f"Bulk retry #{job.pk}: running, 2 of 5 (2 done, 0 skipped, 0 failed)"
        )
        job = drain(job)
    assert (job.status, job.done, job.progress_percent) == ("succeeded", 5, 100)


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no except clause sees it."""


def test_a_job_whose_worker_died_mid_way_resumes_without_acting_twice(
    story, no_enqueue, monkeypatch, settings
):
    failed = outage(story.workspace, 6)
    record = jobs._record
    calls = []

    def dies_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise WorkerDied  # after the engine retried run 3, before it was marked
        record(*args, **kwargs)

    monkeypatch.setattr(jobs, "_record", dies_on_the_third)
    with no_enqueue():
        job = start(story)
        with pytest.raises(WorkerDied):
            bulk.process_chunk(job.pk, chunk=10)
        job.refresh_from_db()
        assert (job.status, job.done) == ("running", 2)
        # Run 3's retry was rolled back with its item: it is still pending, not half-done.
        assert not Run.objects.filter(parent_run=failed[2]).exists()

        # Not stale yet: the sweep leaves a job that may still be working alone.
        assert bulk.resume_stale() == 0
        later = timezone.now() + timedelta(seconds=settings.RUNWAY_BULK_STALE_SECONDS + 1)
        assert bulk.resume_stale(now=later) == 1
        assert bulk.resume_stale(now=later) == 0  # one sweeper re-sends it, once
        job = drain(job)

    assert (job.status, job.done, job.skipped) == ("succeeded", 6, 0)
    for run in failed:
        assert Run.objects.filter(parent_run=run).count() == 1


def test_two_copies_of_a_job_at_once_act_on_each_run_once(story, no_enqueue):
    failed = outage(story.workspace, 4)
    with no_enqueue():
        job = start(story)
        bulk.process_chunk(job.pk, chunk=2)
        bulk.process_chunk(job.pk, chunk=2)  # a re-sent copy of the same message
        bulk.process_chunk(job.pk, chunk=2)
    job.refresh_from_db()
    assert (job.done, job.status) == (4, "succeeded")
    assert sum(Run.objects.filter(parent_run=r).count() for r in failed) == 4


def test_a_bulk_retry_of_many_runs_is_admitted_two_at_a_time(story, no_enqueue):
    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=2)
    failed = outage(story.workspace, 8)
    with no_enqueue():
        drain(start(story))
        retries = list(Run.objects.filter(parent_run__in=failed).order_by("id"))
        # Every retry is queued, none started by the job itself...
        assert {r.status for r in retries} == {Status.QUEUED}
        # ...and the workers' claims go through admission, as any run's do.
        claimed = [engine.claim_run(r.pk, f"w/{i}") for i, r in enumerate(retries)]

    assert sum(c is not None for c in claimed) == 2
    assert Run.objects.filter(workspace=story.workspace, status=Status.RUNNING).count() == 2
    deferred = Run.objects.filter(pk__in=[r.pk for r in retries], error_kind="deferred")
    assert deferred.count() == 6
    assert deferred.earliest("id").card_note.startswith(
        "Waiting for a free slot: 2 runs are running"
    )


def test_a_bulk_retry_past_the_budget_waits_for_it(story, no_enqueue):
    failed = outage(story.workspace, 3)
    # Spent this month whatever day the suite runs: the outage itself dates from T0.
    Run.objects.filter(pk=failed[0].pk).update(cost_usd=Decimal("20"), created_at=timezone.now())
    Workspace.objects.filter(pk=story.workspace.pk).update(monthly_budget_usd=Decimal("10"))
    with no_enqueue():
        drain(start(story))
        retries = list(Run.objects.filter(parent_run__in=failed))
        assert [engine.claim_run(r.pk, "w/1") for r in retries] == [None, None, None]
    assert all(
        r.card_note.startswith("Budget reached")
        for r in Run.objects.filter(pk__in=[r.pk for r in retries])
    )


def test_it_refuses_when_the_count_changed_and_says_how_many_match_now(story):
    outage(story.workspace, 3)
    with pytest.raises(bulk.CountChanged) as caught:
        start(story, expected=2)
    assert caught.value.message == (
        "3 runs match this filter now, not the 2 you confirmed: check the new count and "
        "confirm again."
    )
    assert not BulkAction.objects.exists()


def test_it_refuses_a_filter_that_matches_nothing(story):
    with pytest.raises(bulk.BadFilter, match="No runs match this filter for retry"):
        start(story, expected=0)
    assert not BulkAction.objects.exists()


def test_a_cancelled_job_acts_on_no_more_runs(story, no_enqueue):
    failed = outage(story.workspace, 4)
    with no_enqueue():
        job = start(story)
        bulk.process_chunk(job.pk, chunk=1)
        bulk.cancel_bulk_action(job, story.owner)
        assert bulk.process_chunk(job.pk, chunk=10) is False
    job.refresh_from_db()
    assert (job.status, job.done) == ("cancelled", 1)
    assert Run.objects.filter(parent_run__in=failed).count() == 1
    assert BulkActionItem.objects.filter(bulk_action=job, outcome="pending").count() == 3
    with pytest.raises(bulk.BulkError, match="is cancelled"):
        bulk.cancel_bulk_action(job, story.owner)


def test_stopping_a_job_is_recorded_in_the_audit_log_once(story, no_enqueue):
    from audit.models import AuditEntry

    outage(story.workspace, 4)
    with no_enqueue():
        job = start(story)
        bulk.process_chunk(job.pk, chunk=1)
        bulk.cancel_bulk_action(job, story.teammate)
        with pytest.raises(bulk.BulkError):
            bulk.cancel_bulk_action(job, story.owner)  # already stopped: nothing recorded

    entry = AuditEntry.objects.get(action="bulk.stop")
    assert (entry.actor, entry.target_type, entry.target_id) == (
        story.teammate,
        "bulkaction",
        str(job.pk),
    )
    assert entry.changes == {"action": "retry", "total": 4, "done": 1, "skipped": 0, "failed": 0}


def test_the_job_is_sent_to_the_workers_after_commit(story, eager):
    failed = outage(story.workspace, 3)
    with eager():
        job = start(story)
    job.refresh_from_db()
    assert (job.status, job.done) == ("succeeded", 3)
    # Eager: the retries ran through the offline provider too.
    assert all(Run.objects.filter(parent_run=r).exists() for r in failed)


def test_each_bulk_action_is_recorded_in_the_audit_log(story, no_enqueue):
    from audit.models import AuditEntry

    outage(story.workspace, 3)
    with no_enqueue():
        job = start(story, provider="anthropic")
    entry = AuditEntry.objects.get(workspace=story.workspace)
    assert (entry.action, entry.actor, entry.source) == ("bulk.retry", story.owner, "web")
    assert (entry.target_type, entry.target_id) == ("bulkaction", str(job.pk))
    assert entry.changes == {"filter": {"provider": "anthropic"}, "count": 3}


def test_a_processed_bulk_retry_is_one_entry_not_one_per_run(story, eager):
    from audit.models import AuditEntry

    outage(story.workspace, 3)
    with eager():
        job = start(story)
    job.refresh_from_db()
    assert job.done == 3
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["bulk.retry"]


def test_a_refused_confirmation_leaves_no_audit_entry(story):
    from audit.models import AuditEntry

    outage(story.workspace, 3)
    with pytest.raises(bulk.CountChanged):
        start(story, expected=1)
    assert not AuditEntry.objects.exists()
