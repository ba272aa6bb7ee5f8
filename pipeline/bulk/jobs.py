"""Bulk actions as durable jobs: confirm, work through the runs in chunks, resume after a crash.

Confirming fixes the runs (one ``BulkActionItem`` each) after re-counting the filter's
matches: if that is not the count the operator saw, nothing is written and they are told how
many match now. A Celery task then acts on the pending items a chunk at a time, each through
the engine's own commands (``retry_run``, ``stop_pipeline``, ``rescue_run``) — so a retry is
an ordinary queued run that the workspace's concurrency limit and budget admit or defer like
any other — and marks the item in the same transaction. A worker killed mid-item rolls both
back, so no run is acted on twice; the recovery sweep re-sends a job whose heartbeat went stale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.context import summarised_by_caller
from audit.log import record
from features.models import Feature, Workspace
from pipeline import engine
from pipeline.bulk.filters import BadFilter, RunFilter, matching
from pipeline.models import BulkAction, BulkActionItem, Run

logger = logging.getLogger(__name__)

Outcome = BulkActionItem.Outcome
JobStatus = BulkAction.Status
# One job acts on at most this many runs: a filter wider than that is surely a mistake.
MAX_RUNS = 5000


class BulkError(Exception):
    """A bulk request refused with a message a person can act on; `code` for the API."""

    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CountChanged(BulkError):
    """The runs matching the filter are not the number the operator confirmed."""

    code = "count_changed"

    def __init__(self, matching: int, expected: int) -> None:
        super().__init__(
            f"{matching} run{'s' if matching != 1 else ''} match this filter now, not the "
            f"{expected} you confirmed: check the new count and confirm again."
        )
        self.matching = matching
        self.expected = expected


def send(job_id: int) -> None:
    """Send the job (its next chunk) to the workers. Never raises: with the broker down the
    job stays queued and the recovery sweep sends it once its heartbeat is stale."""
    from pipeline.tasks import process_bulk_action

    try:
        process_bulk_action.apply_async((job_id,))
    except Exception as exc:  # any broker failure: kombu's, redis-py's, a socket's
        logger.warning("bulk action %s is not sent (%s); the sweep re-sends it", job_id, exc)


def start_bulk_action(
    workspace: Workspace,
    actor: User | None,
    action: str,
    run_filter: RunFilter,
    *,
    expected_count: int,
    source: str,
) -> BulkAction:
    """Confirm `action` on the runs `run_filter` matches in `workspace`, as one job.

    `expected_count` is the dry run's count the operator confirmed. Raises CountChanged when the
    match count differs (nothing written), BadFilter when nothing or more than MAX_RUNS match.
    The job is sent to the workers after commit.
    """
    with transaction.atomic():
        ids = list(matching(workspace, action, run_filter).values_list("pk", flat=True))
        if len(ids) != expected_count:
            raise CountChanged(len(ids), expected_count)
        if not ids:
            raise BadFilter("filter", f"No runs match this filter for {action}: nothing to do.")
        if len(ids) > MAX_RUNS:
            raise BadFilter(
                "filter", f"{len(ids)} runs match; at most {MAX_RUNS} at once: narrow the filter."
            )
        job = BulkAction.objects.create(
            workspace=workspace,
            actor=actor,
            action=action,
            filter=run_filter.as_dict(),
            source=source,
            total=len(ids),
        )
        BulkActionItem.objects.bulk_create(
            [BulkActionItem(bulk_action=job, run_id=pk) for pk in ids], batch_size=1000
        )
        _audit(job)
        transaction.on_commit(partial(send, job.pk), robust=True)
    return job


def _audit(job: BulkAction) -> None:
    """The workspace audit log's entry, in the job's own transaction: "bulk.retry" (cancel,
    rescue) with the filter and the count confirmed."""
    record(
        workspace=job.workspace,
        actor=job.actor,
        action=f"bulk.{job.action}",
        target=job,
        changes={"filter": job.filter, "count": job.total},
        source=job.source,
    )


def cancel_bulk_action(job: BulkAction, actor: User | None) -> BulkAction:
    """Stop a queued or running job: runs already acted on stay so, the rest are left alone.
    Raises BulkError when it has already ended."""
    with transaction.atomic():
        stopped = BulkAction.objects.filter(
            pk=job.pk, status__in=BulkAction.ACTIVE_STATUSES
        ).update(
            status=JobStatus.CANCELLED,
            finished_at=timezone.now(),
            error=f"Stopped by {actor.get_username() if actor else 'the operator'}",
        )
        job.refresh_from_db()
        if not stopped:
            raise BulkError(f"Bulk {job.action} #{job.pk} is {job.get_status_display().lower()}.")
        # "bulk.stop", in the same transaction: who stopped it and how far it had got.
        record(
            workspace=job.workspace,
            actor=actor,
            action="bulk.stop",
            target=job,
            changes={
                "action": job.action,
                "total": job.total,
                "done": job.done,
                "skipped": job.skipped,
                "failed": job.failed,
            },
        )
    return job


# --- Processing ----------------------------------------------------------------------------------


def process_chunk(job_id: int, *, chunk: int | None = None) -> bool:
    """Act on up to `chunk` (RUNWAY_BULK_CHUNK) pending runs of the job. Returns whether runs
    remain (the caller sends the next chunk). A finished or cancelled job does nothing.

    Safe to run twice at once (a re-sent job whose first message was only slow): items are
    taken one at a time under the job's row lock and re-checked, so each is acted on once.
    """
    chunk = chunk or settings.RUNWAY_BULK_CHUNK
    now = timezone.now()
    claimed = BulkAction.objects.filter(pk=job_id, status__in=BulkAction.ACTIVE_STATUSES).update(
        status=JobStatus.RUNNING, heartbeat_at=now, started_at=Coalesce(F("started_at"), now)
    )
    if not claimed:
        return False
    job = BulkAction.objects.select_related("actor").get(pk=job_id)
    pending = list(
        job.items.filter(outcome=Outcome.PENDING)
        .order_by("id")
        .values_list("pk", flat=True)[:chunk]
    )
    for item_id in pending:
        if not _process_item(job, item_id):
            return False  # cancelled meanwhile
    if job.items.filter(outcome=Outcome.PENDING).exists():
        return True
    _finish(job_id)
    return False


def _process_item(job: BulkAction, item_id: int) -> bool:
    """Act on one item and record it, in one transaction. False when the job was stopped."""
    with transaction.atomic():
        if (
            not BulkAction.objects.select_for_update()
            .filter(pk=job.pk, status=JobStatus.RUNNING)
            .exists()
        ):
            return False
        item = (
            BulkActionItem.objects.select_for_update(of=("self",))
            .select_related("run")
            .filter(pk=item_id, outcome=Outcome.PENDING)
            .first()
        )
        if item is None:
            return True  # another copy of the job got to it first
        outcome, message, new_run = _act(job, item.run)
        _record(job, item, outcome, message, new_run)
    return True


def _act(job: BulkAction, run: Run) -> tuple[str, str, Run | None]:
    """What the engine does with the run: (outcome, message, the run a retry created)."""
    actor = job.actor
    try:
        # A savepoint: an action that fails half-way leaves nothing behind but the item's mark.
        # The job's one "bulk.<action>" entry stands for every run: none per run.
        with transaction.atomic(), summarised_by_caller():
            if job.action == BulkAction.Action.RETRY:
                new_run = engine.retry_run(run, actor)
                return Outcome.DONE, f"Retrying as run #{new_run.pk}", new_run
            if job.action == BulkAction.Action.CANCEL:
                # The card first, as the engine locks it: Stop ends the card's active run, which
                # must still be this one (not a newer run started since the job was confirmed).
                Feature.objects.select_for_update().filter(pk=run.feature_id).first()
                status = Run.objects.values_list("status", flat=True).get(pk=run.pk)
                if status not in Run.ACTIVE_STATUSES:
                    return (
                        Outcome.SKIPPED,
                        f"Run #{run.pk} is {status} now: nothing to cancel.",
                        None,
                    )
                engine.stop_pipeline(run.feature, actor)
                return Outcome.DONE, "Cancelled", None
            fresh = Run.objects.get(pk=run.pk)
            if fresh.status != Run.Status.RUNNING or not engine.rescue_run(fresh, actor):
                return Outcome.SKIPPED, f"Run #{run.pk} is not running any more.", None
            return Outcome.DONE, "Requeued", None
    except engine.EngineError as exc:
        return Outcome.SKIPPED, str(exc), None
    except DatabaseError:
        raise  # the database is going away: the job resumes from this item later
    except Exception as exc:
        logger.exception("bulk %s #%s could not act on run %s", job.action, job.pk, run.pk)
        return Outcome.FAILED, f"{type(exc).__name__}: {str(exc)[:300]}", None


def _record(
    job: BulkAction, item: BulkActionItem, outcome: str, message: str, new_run: Run | None
) -> None:
    now = timezone.now()
    BulkActionItem.objects.filter(pk=item.pk).update(
        outcome=outcome, message=message[:500], new_run=new_run, processed_at=now
    )
    counter = {"done": "done", "skipped": "skipped", "failed": "failed"}[str(outcome)]
    BulkAction.objects.filter(pk=job.pk).update(**{counter: F(counter) + 1}, heartbeat_at=now)


def _finish(job_id: int) -> None:
    job = BulkAction.objects.get(pk=job_id)
    failed = job.failed > 0
    BulkAction.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
        finished_at=timezone.now(),
        error=f"{job.failed} run(s) could not be acted on; see each run's line." if failed else "",
    )


# --- Recovery ------------------------------------------------------------------------------------


def resume_stale(now: datetime | None = None) -> int:
    """Re-send queued or running jobs silent for RUNWAY_BULK_STALE_SECONDS (their worker died,
    or their message was lost). Each re-send is a conditional UPDATE of the heartbeat, so many
    sweepers at once send a job once. Returns how many were sent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RUNWAY_BULK_STALE_SECONDS)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    candidates = list(
        BulkAction.objects.filter(stale, status__in=BulkAction.ACTIVE_STATUSES).values_list(
            "pk", flat=True
        )[:100]
    )
    sent = 0
    for job_id in candidates:
        stamped = BulkAction.objects.filter(
            stale, pk=job_id, status__in=BulkAction.ACTIVE_STATUSES
        ).update(heartbeat_at=now)
        if stamped:
            logger.warning("bulk action %s went silent; re-sending it", job_id)
            send(job_id)
            sent += 1
    return sent


# --- Reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemLine:
    run_id: int
    outcome: str
    message: str
    new_run_id: int | None


def job_dict(job: BulkAction, *, items: bool = False) -> dict[str, Any]:
    """The job as the API and the CLI show it."""
    data: dict[str, Any] = {
        "id": job.pk,
        "workspace": job.workspace.slug,
        "actor": job.actor.get_username() if job.actor else None,
        "action": job.action,
        "filter": job.filter,
        "source": job.source,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "skipped": job.skipped,
        "failed": job.failed,
        "pending": max(job.total - job.processed, 0),
        "progress_percent": job.progress_percent,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
    if items:
        data["items"] = [
            {
                "run": line.run_id,
                "outcome": line.outcome,
                "message": line.message,
                "new_run": line.new_run_id,
            }
            for line in item_lines(job)
        ]
    return data


def item_lines(job: BulkAction, *, limit: int = MAX_RUNS) -> list[ItemLine]:
    rows = job.items.order_by("id").values_list("run_id", "outcome", "message", "new_run_id")
    return [ItemLine(*row) for row in rows[:limit]]


def progress_line(job: BulkAction) -> str:
    """ "Bulk retry #4: running, 12 of 40 (10 done, 2 skipped, 0 failed)"."""
    return (
        f"Bulk {job.action} #{job.pk}: {job.get_status_display().lower()}, {job.processed} of "
        f"{job.total} ({job.done} done, {job.skipped} skipped, {job.failed} failed)"
    )
