"""Admission: whether a workspace may start another run now (concurrency slots, monthly budget),
and deferring the runs it may not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from features import notices
from features.models import Workspace
from pipeline.engine import transitions
from pipeline.engine.runs import enqueue
from pipeline.models import Run

# How soon a run refused for lack of a slot, or for the budget, is looked at again. A run
# waiting for a slot is woken as soon as one frees (wake_deferred); the retry is the safety
# net for a lost wake-up message, and for a refusal that committed just after the run holding
# the slot looked for waiting runs (its completion does not take the admission lock, so that
# claims never queue behind completions).
ADMISSION_RETRY_SECONDS = 5.0
SLOT_WAIT = "Waiting for a free slot"
BUDGET_RETRY_SECONDS = 60.0
Status = Run.Status


def month_spend(workspace_id: int, now: datetime) -> Decimal:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = Run.objects.filter(workspace_id=workspace_id, created_at__gte=start).aggregate(
        total=Sum("cost_usd")
    )["total"]
    return total or Decimal("0")


def admission_refusal(run_id: int, now: datetime) -> tuple[str, float] | None:
    """Why the workspace cannot start this run now, and when to look again; None if it can.

    Call under the workspace's admission lock (locks.lock_card_for_claim), so two workers
    cannot both take the last free slot.
    """
    workspace_id = Run.objects.values_list("workspace_id", flat=True).get(pk=run_id)
    workspace = Workspace.objects.get(pk=workspace_id)
    running = Run.objects.filter(workspace_id=workspace_id, status=Status.RUNNING).count()
    if running >= workspace.max_concurrent_runs:
        why = (
            f"{SLOT_WAIT}: {running} runs are running in this workspace "
            f"(limit {workspace.max_concurrent_runs})"
        )
        _tell_if_waiting_long(run_id, workspace_id, why, now)
        return why, ADMISSION_RETRY_SECONDS
    budget = workspace.monthly_budget_usd
    if budget is not None:
        spent = month_spend(workspace_id, now)
        if spent >= budget:
            why = (
                f"Budget reached: ${spent:.2f} of ${budget:.2f} spent this month; "
                "raise the budget to resume"
            )
            # Said on every look again; listeners tell people once a day (notifications).
            notices.emit(notices.BUDGET_REACHED, workspace_id=workspace_id, text=why, run_id=run_id)
            return why, BUDGET_RETRY_SECONDS
    return None


def _tell_if_waiting_long(run_id: int, workspace_id: int, why: str, now: datetime) -> None:
    """Slots exhausted for long: a run queued over RUNWAY_SLOTS_NOTICE_SECONDS is worth
    telling people (listeners de-duplicate); a short wait for a slot is not."""
    queued_at = Run.objects.values_list("queued_at", flat=True).get(pk=run_id)
    if queued_at is not None and (now - queued_at).total_seconds() >= (
        settings.RUNWAY_SLOTS_NOTICE_SECONDS
    ):
        notices.emit(notices.SLOTS_EXHAUSTED, workspace_id=workspace_id, text=why, run_id=run_id)


def defer(
    run_id: int, why: str, retry_in: float, *, now: datetime, feature_id: int | None = None
) -> None:
    """Leave the run queued, say why on its card, and look again in `retry_in` seconds."""
    until = now + timedelta(seconds=retry_in)
    if transitions.defer(run_id, why=why, until=until, feature_id=feature_id):
        transaction.on_commit(partial(enqueue, run_id, countdown=retry_in), robust=True)


def resume_deferred(workspace: Workspace) -> int:
    """Budget raised or slots freed: send the workspace's waiting runs again now (after
    commit). Returns how many."""
    waiting = transitions.undefer(workspace.pk)
    for run_id in waiting:
        transaction.on_commit(partial(enqueue, run_id), robust=True)
    return len(waiting)


def wake_deferred(freed: list[int]) -> list[int]:
    """These runs stopped running: send, after commit, as many of their workspaces' runs
    deferred for want of a slot (oldest first), so a freed slot is taken at once rather than
    at the next retry. Returns the ids woken. A woken run still passes admission when claimed.
    """
    waiting = list(
        Run.objects.filter(
            workspace_id__in=Run.objects.filter(pk__in=freed).values("workspace_id"),
            status=Status.QUEUED,
            error_kind=Run.ErrorKind.DEFERRED,
            error_message__startswith=SLOT_WAIT,
        )
        .order_by("queued_at", "id")
        .values_list("pk", flat=True)[: len(freed)]
    )
    if not waiting:
        return []
    Run.objects.filter(pk__in=waiting, status=Status.QUEUED).update(next_attempt_at=None)
    for run_id in waiting:
        transaction.on_commit(partial(enqueue, run_id), robust=True)
    return waiting
