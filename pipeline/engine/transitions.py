"""Run transitions: the only code that changes a run's status.

Every transition is one conditional UPDATE (``WHERE status = … [AND attempt = N]``) that
returns whether it happened; callers check that before any side effect (a log line, a
message, an event). Each one that happened marks the run's card, whose displayed status is
then derived once at the end of the engine transaction (``card_state``).

    create ─▶ waiting ─release─▶ queued   (its dependencies, or the tree before it, finished)
    create ─▶ awaiting_approval ─start─▶ queued ─claim─▶ running ─succeed─▶ succeeded
                                          ▲   ╰─defer/stamp─╯  │ ╰─fail─▶ failed
                                          ╰────requeue─────────╯   (stale: claim takes over)
    any active ─cancel─▶ cancelled          succeeded(pending) ─decide─▶ accepted / rejected
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Field, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from features import events, notices
from features.models import Feature, Workspace
from pipeline.engine.card_state import (
    LatestRun,
    active_card_status,
    slot_freed,
    touch,
    touch_active,
)
from pipeline.engine.definitions import version_sql
from pipeline.models import Run
from pipeline.runlog import Statement
from pipeline.storable import clip

Status = Run.Status


def _feature_of(run_id: int) -> int:
    return Run.objects.values_list("feature_id", flat=True).get(pk=run_id)


def _touched(run_id: int, done: int, feature_id: int | None = None) -> bool:
    if done:
        touch(feature_id if feature_id is not None else _feature_of(run_id))
    return bool(done)


def create(**fields: Any) -> Run:
    """A new run (queued or awaiting approval). The partial unique index refuses a second
    active run of the card with IntegrityError."""
    run = Run.objects.create(**fields)
    touch(run.feature_id)
    if run.status == Status.AWAITING_APPROVAL:
        _awaiting_start(run.pk, run.workspace_id, run.feature_id, run.card_note)
    return run


def _awaiting_start(run_id: int, workspace_id: int, feature_id: int, note: str) -> None:
    notices.emit(
        notices.AWAITING_START,
        workspace_id=workspace_id,
        feature_id=feature_id,
        run_id=run_id,
        text=note or "waits for Start",
    )


def claim(
    run_id: int,
    *,
    worker_id: str,
    now: datetime,
    not_before: datetime,
    stale_before: datetime,
    feature_id: int | None = None,
) -> bool:
    """queued → running, or a stale running run taken over (its worker is gone); attempt + 1.

    A queued run whose backoff ends after `not_before` stays queued; a running run whose
    heartbeat is newer than `stale_before` is someone else's. The incremented attempt is the
    fencing token: the previous holder's writes no longer match.
    """
    claimable = Q(status=Status.QUEUED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=not_before)
    ) | Q(status=Status.RUNNING, heartbeat_at__lt=stale_before, attempt__lt=F("max_attempts"))
    done = Run.objects.filter(claimable, pk=run_id).update(
        status=Status.RUNNING,
        attempt=F("attempt") + 1,
        worker_id=worker_id,
        claimed_at=now,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), Value(now)),
        next_attempt_at=None,
        card_note="",
    )
    return _touched(run_id, done, feature_id)


def _returning(sql: str, params: list[Any], *, extra: str = "") -> Run | None:
    """Run an UPDATE … RETURNING every column of the run (and the `extra` expressions, set as
    attributes); the run as it is now, or None when no row matched. The run comes back from
    the write itself: nothing is read twice."""
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in Run._meta.concrete_fields)
    if extra:
        columns += f", {extra}"
    rows = list(Run.objects.raw(f"{sql} RETURNING {columns}", params))
    return rows[0] if rows else None


def _when(value: datetime) -> Any:
    # Raw SQL parameters in the form the backend stores datetimes in (SQLite keeps text).
    return connection.ops.adapt_datetimefield_value(value)


def claim_admitted(
    run_id: int, *, worker_id: str, now: datetime, not_before: datetime, workspace_id: int
) -> Run | None:
    """queued → running, attempt + 1, in one statement that also admits it: the run's backoff
    has passed (not after `not_before`), fewer of the workspace's runs are running than its
    `max_concurrent_runs` and, with a monthly budget, less than the budget was spent this
    month. Returns the claimed run; None when any of that does not hold (the caller works out
    which). Call under the workspace's admission lock (locks.lock_card_for_claim), so the
    count sees every claim that committed before it.
    """
    q = connection.ops.quote_name
    runs, workspaces = q(Run._meta.db_table), q(Workspace._meta.db_table)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # Table names come from the models' meta; every value is a parameter.
    sql = f"""
        UPDATE {runs} SET status = %s, attempt = attempt + 1, worker_id = %s, claimed_at = %s,
            heartbeat_at = %s, started_at = COALESCE(started_at, %s), next_attempt_at = NULL,
            card_note = ''
        WHERE id = %s AND status = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
          AND (SELECT COUNT(*) FROM {runs} AS busy
               WHERE busy.workspace_id = %s AND busy.status = %s)
              < (SELECT w.max_concurrent_runs FROM {workspaces} AS w WHERE w.id = %s)
          AND NOT EXISTS (
              SELECT 1 FROM {workspaces} AS w
              WHERE w.id = %s AND w.monthly_budget_usd IS NOT NULL
                AND w.monthly_budget_usd <= (
                    SELECT COALESCE(SUM(spent.cost_usd), 0) FROM {runs} AS spent
                    WHERE spent.workspace_id = %s AND spent.created_at >= %s))"""  # noqa: S608
    at = _when(now)
    params = [Status.RUNNING, worker_id, at, at, at, run_id, Status.QUEUED, _when(not_before)]
    params += [workspace_id, Status.RUNNING, workspace_id, workspace_id, workspace_id]
    params += [_when(month_start)]
    if connection.vendor != "postgresql":
        run = _returning(sql, params)
        if run is not None:
            touch_active(run.feature_id, run.workspace_id, latest_of(run))
        return run
    # PostgreSQL: the same statement shows the card as running (what a claimed run derives to;
    # card_note was just cleared), and says whether that changed what the card showed.
    cards = q(Feature._meta.db_table)
    status, note = active_card_status(LatestRun(Status.RUNNING, Run.Decision.AUTO, "", "", 0))
    columns = ", ".join(q(str(f.column)) for f in Run._meta.concrete_fields)
    full = f"""
        WITH claimed AS ({sql} RETURNING {columns}),
        shown AS (
            UPDATE {cards} SET status = %s, status_note = %s, updated_at = %s
            WHERE id = (SELECT feature_id FROM claimed)
              AND NOT (status = %s AND status_note = %s)
            RETURNING id)
        SELECT claimed.*, EXISTS (SELECT 1 FROM shown) AS card_changed, {version_sql()}
        FROM claimed"""  # noqa: S608
    rows = list(Run.objects.raw(full, [*params, status, note, at, status, note]))
    if not rows:
        return None
    run = rows[0]
    touch_active(run.feature_id, run.workspace_id, latest_of(run), stored=True)
    if getattr(run, "card_changed", False):  # set by the raw query
        events.card_changed_on_commit(Feature(pk=run.feature_id, workspace_id=run.workspace_id))
    return run


def latest_of(run: Run) -> LatestRun:
    """What a card's status reads from its latest run (card_state)."""
    return LatestRun(run.status, run.decision, run.error_kind, run.card_note, run.stage_id)


def defer(run_id: int, *, why: str, until: datetime, feature_id: int | None = None) -> bool:
    """queued stays queued until `until`: the workspace has no free slot or budget."""
    done = Run.objects.filter(pk=run_id, status=Status.QUEUED).update(
        next_attempt_at=until,
        error_kind=Run.ErrorKind.DEFERRED,
        error_message=why,
        card_note=clip(why, 500),
    )
    return _touched(run_id, done, feature_id)


def undefer(workspace_id: int) -> list[int]:
    """Deferred runs of the workspace may be claimed now. Returns their ids."""
    waiting = list(
        Run.objects.filter(
            workspace_id=workspace_id, status=Status.QUEUED, error_kind=Run.ErrorKind.DEFERRED
        ).values_list("pk", flat=True)
    )
    Run.objects.filter(pk__in=waiting, status=Status.QUEUED).update(next_attempt_at=None)
    return waiting


def stamp_dispatch(run_id: int, *, now: datetime, due_before: datetime) -> bool:
    """queued → queued, re-sent: only if it is still overdue (two sweepers send it once)."""
    done = (
        Run.objects.filter(pk=run_id, status=Status.QUEUED)
        .filter(
            Q(next_attempt_at__isnull=True, queued_at__lt=due_before)
            | Q(next_attempt_at__lt=due_before)
        )
        .update(queued_at=now, next_attempt_at=None)
    )
    return bool(done)


def start(run_id: int, *, user_id: int | None) -> bool:
    """awaiting_approval → queued: a person started it."""
    done = Run.objects.filter(pk=run_id, status=Status.AWAITING_APPROVAL).update(
        status=Status.QUEUED, queued_at=timezone.now(), triggered_by_id=user_id, card_note=""
    )
    return _touched(run_id, done)


def release(run_id: int, *, feature_id: int, status: str = Status.QUEUED, note: str = "") -> bool:
    """waiting → queued (or awaiting_approval, when the stage needs a person's Start): what
    the run waited for has finished."""
    now = timezone.now()
    done = Run.objects.filter(pk=run_id, status=Status.WAITING).update(
        status=status, queued_at=now if status == Status.QUEUED else None, card_note=clip(note, 500)
    )
    if done and status == Status.AWAITING_APPROVAL:
        workspace_id = Run.objects.values_list("workspace_id", flat=True).get(pk=run_id)
        _awaiting_start(run_id, workspace_id, feature_id, note)
    return _touched(run_id, done, feature_id)


def cancel(feature_id: int, *, message: str, note: str) -> list[tuple[int, str]]:
    """Every active run of the card → cancelled. Returns [(run id, status it had)]."""
    active = list(
        Run.objects.select_for_update()
        .filter(feature_id=feature_id, status__in=Run.ACTIVE_STATUSES)
        .values_list("pk", "status")
    )
    if not active:
        return []
    Run.objects.filter(pk__in=[pk for pk, _ in active], status__in=Run.ACTIVE_STATUSES).update(
        status=Status.CANCELLED,
        finished_at=timezone.now(),
        pipeline_next=[],
        error_kind=Run.ErrorKind.CANCELLED,
        error_message=message,
        card_note=clip(note, 500),
    )
    touch(feature_id)
    for run_id, status in active:
        if status == Status.RUNNING:
            slot_freed(run_id)
    return active


def succeed(run_id: int, attempt: int, *, feature_id: int | None = None) -> Run | None:
    """running → succeeded (fenced). Returns the run as it now is (one statement), or None
    when it is not this attempt's any more. The outcome is written by :func:`record_outcome`
    in the same transaction once gates are checked."""
    runs = connection.ops.quote_name(Run._meta.db_table)
    version = version_sql()
    run = _returning(
        f"UPDATE {runs} SET status = %s, heartbeat_at = %s "  # noqa: S608
        "WHERE id = %s AND status = %s AND attempt = %s",
        [Status.SUCCEEDED, _when(timezone.now()), run_id, Status.RUNNING, attempt],
        # Whether a run of the workspace waits for the slot this one frees, in the same trip.
        extra=f"EXISTS (SELECT 1 FROM {runs} AS deferred WHERE deferred.workspace_id = "  # noqa: S608
        f"{runs}.workspace_id AND deferred.status = '{Status.QUEUED}' AND "
        f"deferred.error_kind = '{Run.ErrorKind.DEFERRED}') AS has_deferred"
        # And the definitions' count: the completion may use the stages it read under it.
        + (f", {version}" if version else ""),
    )
    if run is not None:
        touch(feature_id if feature_id is not None else run.feature_id)
        if getattr(run, "has_deferred", True):
            slot_freed(run_id)
    return run


def usage_updates(usage: dict[str, Any]) -> dict[str, Any]:
    """UPDATE arguments adding a step's token counts and cost to the run's. A cost of None (the
    server reported no usage) makes the run's cost unknown (NULL), never $0; NULL + x stays
    NULL, so it stays unknown."""
    return {k: None if v is None else F(k) + v for k, v in usage.items() if v != 0}


def record_outcome(
    run_id: int,
    attempt: int,
    *,
    status: str,
    feature_id: int | None = None,
    carry: Callable[[Statement], int | None] | None = None,
    usage: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """The completion's last write: succeeded stays succeeded or becomes failed (gates), with
    `fields` set and `usage` added (:func:`usage_updates`).

    `carry` may send the ``UPDATE`` (SQL and parameters) along with another write in one
    round trip (``runlog.flush_buffered``'s `along`) and return its row count, or None when
    it did not, and the UPDATE then runs on its own."""
    done = None
    if carry is not None:
        done = carry(_outcome_update(run_id, attempt, status=status, usage=usage, **fields))
    if done is None:
        done = Run.objects.filter(pk=run_id, status=Status.SUCCEEDED, attempt=attempt).update(
            status=status, finished_at=timezone.now(), **fields, **usage_updates(usage or {})
        )
    return _touched(run_id, done, feature_id)


def _run_field(name: str) -> Field[Any, Any]:
    field = Run._meta.get_field(name)
    assert isinstance(field, Field), name
    return field


def _outcome_update(
    run_id: int, attempt: int, *, status: str, usage: dict[str, Any] | None, **fields: Any
) -> Statement:
    """The fenced outcome UPDATE as SQL and parameters, each value prepared by its field as the
    ORM prepares it (JSON, decimals, datetimes): what ``QuerySet.update`` would send, without
    building and compiling a query on every completion (0.28 ms of it)."""
    q = connection.ops.quote_name
    assignments, params = [], []
    for name, value in {"status": status, **fields, "finished_at": timezone.now()}.items():
        field = _run_field(name)
        assignments.append(f"{q(str(field.column))} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name, value in (usage or {}).items():
        if value == 0:
            continue
        field = _run_field(name)
        column = q(str(field.column))
        if value is None:  # unknown stays unknown (see usage_updates)
            assignments.append(f"{column} = NULL")
        else:
            assignments.append(f"{column} = {column} + %s")
            params.append(field.get_db_prep_save(value, connection))
    # Names come from the model's meta; every value is a parameter.
    sql = (
        f"UPDATE {q(Run._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        "WHERE id = %s AND status = %s AND attempt = %s"
    )
    return sql, [*params, run_id, Status.SUCCEEDED, attempt]


def fail(run_id: int, attempt: int, *, kind: str, message: str, note: str) -> bool:
    """running → failed (fenced)."""
    done = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error_kind=kind,
        error_message=message,
        card_note=clip(note, 500),
    )
    if done:
        slot_freed(run_id)
    return _touched(run_id, done)


def requeue(
    run_id: int,
    attempt: int,
    *,
    kind: str,
    message: str,
    note: str,
    next_attempt_at: datetime | None = None,
    stale_before: datetime | None = None,
    **fields: Any,
) -> bool:
    """running → queued (fenced): a transient error's retry, or a lost worker's run.

    With `stale_before`, only while the heartbeat is still older than that: a heartbeat that
    landed after the sweep looked means the worker lives, and the run is left alone.
    """
    runs = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt)
    if stale_before is not None:
        runs = runs.filter(heartbeat_at__lt=stale_before)
    done = runs.update(
        status=Status.QUEUED,
        queued_at=timezone.now(),
        next_attempt_at=next_attempt_at,
        worker_id="",
        error_kind=kind,
        error_message=message,
        card_note=clip(note, 500),
        **fields,
    )
    if done:
        slot_freed(run_id)
    return _touched(run_id, done)


def fail_stale(
    run_id: int, *, attempt: int, stale_before: datetime, message: str, note: str
) -> bool:
    """running → failed for a run whose worker is gone and whose attempts are used up."""
    done = Run.objects.filter(
        pk=run_id, status=Status.RUNNING, attempt=attempt, heartbeat_at__lt=stale_before
    ).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error_kind=Run.ErrorKind.LOST,
        error_message=message,
        card_note=clip(note, 500),
    )
    if done:
        slot_freed(run_id)
    return _touched(run_id, done)


def decide(run_id: int, decision: str, *, note: str = "", **fields: Any) -> bool:
    """A result waiting for a decision (succeeded, pending) → accepted or rejected."""
    done = Run.objects.filter(
        pk=run_id, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
    ).update(decision=decision, card_note=clip(note, 500), **fields)
    return _touched(run_id, done)


def reject_waiting(feature_id: int, *, note: str) -> int:
    """Stop: the card's results waiting for a decision are rejected and their chain ended."""
    done = Run.objects.filter(
        feature_id=feature_id, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
    ).update(decision=Run.Decision.REJECTED, pipeline_next=[], card_note=clip(note, 500))
    if done:
        touch(feature_id)
    return done
