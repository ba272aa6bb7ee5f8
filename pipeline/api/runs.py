"""/api/runs (runs, their actions and logs, as JSON or Server-Sent Events) and /api/workers.

Run actions call the engine, as the board's buttons do. A log stream polls the database in
short autocommit queries: no transaction stays open while a client listens.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from features.access import get_feature, get_workspace, workspaces_for
from features.api.base import (
    LAUNCH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiError,
    Id,
    Input,
    Note,
    Slug,
    caller,
    check_launch_rate,
    require_site_admin,
    responses,
)
from pipeline import engine
from pipeline.api.cards import ArtifactOut, artifact_out
from pipeline.api.stream_guard import StreamGrant, close_grant, keep_grant, open_grant
from pipeline.db_faults import release_connection
from pipeline.health import health_report, health_report_for
from pipeline.models import WORKER_STALE_AFTER, Run, RunLog, WorkerHeartbeat

router = Router()

RunStatus = Literal[
    "waiting", "awaiting_approval", "queued", "running", "succeeded", "failed", "cancelled"
]
Status = Run.Status
# How many log lines one poll (or one JSON page) returns at most.
LOG_BATCH = 1000
KEEPALIVE_SECONDS = 15.0
HEARTBEAT_CLEANUP_AGE = timedelta(days=1)


# --- Schemas -----------------------------------------------------------------------------------


class RunOut(Schema):
    id: int
    feature: int
    workspace: str
    stage: str
    status: str
    decision: str
    attempt: int
    max_attempts: int
    parent_run: int | None
    next_run: int | None = Field(description="The run this one's success created, if any.")
    pipeline_index: int
    pipeline_next: list[str]
    progress_percent: int
    triggered_by: str | None
    worker_id: str
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    error_kind: str
    error_message: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float | None = Field(
        description="USD; null when unknown (a call of the run reported no token usage)."
    )


class RunPage(Schema):
    count: int
    items: list[RunOut]


class LogOut(Schema):
    seq: int
    level: str
    message: str
    data: dict[str, Any]
    attempt: int
    created_at: datetime


class GateOut(Schema):
    name: str
    passed: bool
    required: bool
    message: str


class RunDetail(RunOut):
    logs: list[LogOut]
    artifacts: list[ArtifactOut]
    gates: list[GateOut]


class LogsOut(Schema):
    run_id: int
    status: str
    finished: bool
    logs: list[LogOut]


class RunAction(Input):
    action: Literal["retry", "cancel", "start", "accept", "reject", "rescue"]
    reason: Note = Field(default="", description="Why (reject only); shown on the card.")


class RunActionOut(Schema):
    action: str
    message: str
    run: RunOut
    new_run: RunOut | None = Field(description="The run the action created (retry, accept).")


class WorkerOut(Schema):
    worker_id: str
    hostname: str
    pid: int
    concurrency: int
    health: Literal["alive", "stale", "stopped"]
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    run_ids: list[int] = Field(description="Runs of your workspaces the worker is on.")
    other_runs: int = Field(description="Runs of other workspaces, counted, never named.")


class WorkersOut(Schema):
    workers: list[WorkerOut]


class WorkerAction(Input):
    action: Literal["health_check", "rescue", "cleanup"]


class WorkerActionOut(Schema):
    action: str
    health: dict[str, Any] | None = None
    requeued: int | None = None
    failed: int | None = None
    deleted: int | None = None


# --- Shapes ------------------------------------------------------------------------------------


def _runs() -> QuerySet[Run]:
    child = Run.objects.filter(parent_run=OuterRef("pk")).values("pk")[:1]
    return Run.objects.select_related("workspace", "stage", "triggered_by").annotate(
        next_run_id=Subquery(child)
    )


def run_out(run: Run) -> dict[str, Any]:
    duration = run.duration
    return {
        "id": run.pk,
        "feature": run.feature_id,
        "workspace": run.workspace.slug,
        "stage": run.stage.key,
        "status": run.status,
        "decision": run.decision,
        "attempt": run.attempt,
        "max_attempts": run.max_attempts,
        "parent_run": run.parent_run_id,
        "next_run": getattr(run, "next_run_id", None),
        "pipeline_index": run.pipeline_index,
        "pipeline_next": [str(s) for s in run.pipeline_next or []],
        "progress_percent": run.progress_percent,
        "triggered_by": run.triggered_by.get_username() if run.triggered_by else None,
        "worker_id": run.worker_id,
        "created_at": run.created_at,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": duration.total_seconds() if duration is not None else None,
        "error_kind": run.error_kind,
        "error_message": run.error_message,
        "provider": run.provider,
        "model": run.model,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "cache_read_tokens": run.cache_read_tokens,
        "cache_write_tokens": run.cache_write_tokens,
        "cost_usd": None if run.cost_usd is None else float(run.cost_usd),
    }


def _log_out(line: dict[str, Any]) -> dict[str, Any]:
    data = line["data"]
    return {**line, "data": data if isinstance(data, dict) else {"value": data}}


def _log_lines(run_id: int, after: int, limit: int = LOG_BATCH) -> list[dict[str, Any]]:
    lines = (
        RunLog.objects.filter(run_id=run_id, seq__gt=after)
        .order_by("seq")
        .values("seq", "level", "message", "data", "attempt", "created_at")[:limit]
    )
    return [_log_out(dict(line)) for line in lines]


def _gates(result: Any) -> list[dict[str, Any]]:
    gates = result.get("gates") if isinstance(result, dict) else None
    if not isinstance(gates, list):
        return []
    return [
        {
            "name": str(g.get("name", "")),
            "passed": bool(g.get("passed")),
            "required": bool(g.get("required", True)),
            "message": str(g.get("message", "")),
        }
        for g in gates
        if isinstance(g, dict)
    ]


def _run_for(user: User, pk: int, *, write: bool = False, admin: bool = False) -> Run:
    """A run of one of the user's workspaces (404 otherwise), with the role checked (403)."""
    run = _runs().filter(pk=pk, workspace__memberships__user_id=user.pk).first()
    if run is None:
        raise Http404("No such run.")
    get_workspace(user, run.workspace.slug, write=write, admin=admin)
    return run


def _fresh(pk: int) -> Run:
    return _runs().get(pk=pk)


# --- Runs --------------------------------------------------------------------------------------


@router.get("/runs", response=responses({200: RunPage}, READ_ERRORS))
def list_runs(
    request: HttpRequest,
    feature: Id | None = None,
    workspace: Slug | None = None,
    status: RunStatus | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """Runs of your workspaces, newest first."""
    user = caller(request)
    runs = Run.objects.filter(workspace__in=workspaces_for(user))
    if feature is not None:
        runs = runs.filter(feature=get_feature(user, feature)[0])
    if workspace:
        runs = runs.filter(workspace=get_workspace(user, workspace)[0])
    if status:
        runs = runs.filter(status=status)
    page = _runs().filter(pk__in=runs.values("pk")).defer("result").order_by("-created_at", "-id")
    return {"count": runs.count(), "items": [run_out(r) for r in page[offset : offset + limit]]}


@router.get("/runs/{id}", response=responses({200: RunDetail}, READ_ERRORS))
def get_run(request: HttpRequest, id: Id) -> dict[str, Any]:
    """One run with its log, its artifacts and its gate results."""
    run = _run_for(caller(request), id)
    return {
        **run_out(run),
        "logs": _log_lines(run.pk, 0, limit=10 * LOG_BATCH),
        "artifacts": [artifact_out(a) for a in run.artifacts.order_by("name", "-version")],
        "gates": _gates(run.result),
    }


def _cancel(run: Run, user: User) -> tuple[str, Run | None]:
    waiting = run.status == Status.SUCCEEDED and run.decision == Run.Decision.PENDING
    if not (run.is_active or waiting):
        raise ApiError(
            409,
            "not_active",
            f"Run #{run.pk} is {run.get_status_display().lower()}: nothing to cancel.",
        )
    engine.stop_pipeline(run.feature, user)
    return f"Run #{run.pk} cancelled", None


def _rescue(run: Run, user: User) -> tuple[str, Run | None]:
    if run.status != Status.RUNNING or not engine.rescue_run(run, user):
        raise ApiError(
            409, "not_running", f"Run #{run.pk} is not running (any more): nothing to rescue."
        )
    return f"Run #{run.pk} requeued", None


def _apply(action: str, run: Run, user: User, reason: str) -> tuple[str, Run | None]:
    if action == "retry":
        new_run = engine.retry_run(run, user)
        return f"Retrying run #{run.pk} as run #{new_run.pk}", new_run
    if action == "cancel":
        return _cancel(run, user)
    if action == "start":
        engine.start_run(run, user)
        return f"Run #{run.pk} started", None
    if action == "accept":
        next_run = engine.accept_run(run, user)
        return f"Run #{run.pk} accepted", next_run
    if action == "reject":
        engine.reject_run(run, user, reason)
        return f"Run #{run.pk} rejected", None
    return _rescue(run, user)


@router.post("/runs/{id}", response=responses({200: RunActionOut}, LAUNCH_ERRORS))
def act_on_run(request: HttpRequest, id: Id, payload: RunAction) -> dict[str, Any]:
    """retry, cancel, start, accept or reject a run (members); rescue a running one (admins)."""
    user = caller(request)
    run = _run_for(user, id, write=True, admin=payload.action == "rescue")
    if payload.action == "retry":
        check_launch_rate(user)
    message, new_run = _apply(payload.action, run, user, payload.reason)
    return {
        "action": payload.action,
        "message": message,
        "run": run_out(_fresh(run.pk)),
        "new_run": run_out(_fresh(new_run.pk)) if new_run is not None else None,
    }


# --- Logs --------------------------------------------------------------------------------------

_STREAM_DOC = {
    "responses": {
        200: {
            "description": "JSON, or with stream=true Server-Sent Events: one event per log "
            "line (`id: <seq>`, data: the line as JSON), then `event: end` when the run is "
            "finished. Reconnect with `Last-Event-ID` to resume after a line.",
            "content": {
                "text/event-stream": {
                    # Before OpenAPI 3.2, an event stream's `schema` describes each event.
                    "schema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"type": "string", "enum": ["message", "end"]},
                            "id": {"type": "string", "description": "The line's seq."},
                            "data": {
                                "type": "string",
                                "description": "A log line as JSON; for `end`, "
                                '{"run_id", "status", "next_run"}.',
                            },
                            "retry": {"type": "integer"},
                        },
                    }
                }
            },
        }
    },
}


@router.get(
    "/runs/{id}/logs",
    response=responses({200: LogsOut}, READ_ERRORS),
    openapi_extra=_STREAM_DOC,
)
def run_logs(
    request: HttpRequest,
    id: Id,
    after: int = Query(0, ge=0, le=2**31 - 1, description="Only lines after this seq."),
    limit: int = Query(LOG_BATCH, ge=1, le=LOG_BATCH),
    stream: bool = Query(False, description="Server-Sent Events until the run is finished."),
) -> Any:
    """The run's log lines, as JSON or as a live Server-Sent Events stream.

    A reconnecting stream sends `Last-Event-ID: <seq>` (as EventSource does) to resume after
    that line; a value that is not a seq from 0 to 2147483647 is a 422."""
    user = caller(request)
    run = _run_for(user, id)
    after = max(after, _last_event_id(request))
    if stream:
        return _event_stream(request, run.pk, after, open_grant(request, user.pk, run.workspace_id))
    status = Run.objects.values_list("status", flat=True).get(pk=run.pk)
    return {
        "run_id": run.pk,
        "status": status,
        "finished": status in Run.FINISHED_STATUSES,
        "logs": _log_lines(run.pk, after, limit),
    }


def _last_event_id(request: HttpRequest) -> int:
    """The seq an EventSource reconnects after (its Last-Event-ID header); 422 if malformed.

    Read by hand rather than as a declared parameter: a header the API does not know must not
    make a request invalid, and a declared header parameter would (the operation's description
    documents it)."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit() or int(raw) > 2**31 - 1:
        raise ApiError(
            422,
            "validation_error",
            "Last-Event-ID: the seq of a log line (0 to 2147483647).",
            field="Last-Event-ID",
        )
    return int(raw)


def _sse_line(line: dict[str, Any]) -> str:
    # Event streams are UTF-8 by definition; JSON still escapes the CR and LF that would end
    # an event early.
    data = json.dumps(line, cls=DjangoJSONEncoder, ensure_ascii=False)
    return f"id: {line['seq']}\ndata: {data}\n\n"


def _poll(run_id: int, after: int, grant: StreamGrant) -> tuple[list[str], int, str | None]:
    """One look at the run: new events, the last seq sent, and the end event once finished
    (or once the stream's access is gone: logout, membership removed, token revoked).

    The database connection goes back (to the web process's pool) after each look: a stream
    that is open for half an hour holds none between polls.
    """
    try:
        if not keep_grant(grant):
            return [], after, _ACCESS_ENDED
        return _look(run_id, after)
    finally:
        release_connection()


def _look(run_id: int, after: int) -> tuple[list[str], int, str | None]:
    """The status is read before the lines: every line written before the run finished is then
    in this batch or an earlier one, so the end event never overtakes a line."""
    status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    lines = _log_lines(run_id, after)
    events = [_sse_line(line) for line in lines]
    if lines:
        after = lines[-1]["seq"]
    end = None
    if (status is None or status in Run.FINISHED_STATUSES) and len(lines) < LOG_BATCH:
        next_run = Run.objects.filter(parent_run_id=run_id).values_list("pk", flat=True).first()
        payload = {"run_id": run_id, "status": status or "deleted", "next_run": next_run}
        end = f"event: end\ndata: {json.dumps(payload)}\n\n"
    return events, after, end


_RETRY = "retry: 2000\n\n"
_TIME_LIMIT = ": time limit reached; reconnect with Last-Event-ID to go on\n\n"
_KEEPALIVE = ": keepalive\n\n"
_ACCESS_ENDED = (
    'event: error\ndata: {"code": "forbidden", "message": "Access to this run ended (logged out, '
    'removed from the workspace or token revoked)."}\n\n'
)


class _Clock:
    """When to stop (the stream's time limit) and when to send a keep-alive comment."""

    def __init__(self) -> None:
        now = time.monotonic()
        self.deadline = now + settings.RUNWAY_API_STREAM_MAX_SECONDS
        self.last_sent = now

    def sent(self) -> None:
        self.last_sent = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def keepalive_due(self) -> bool:
        return time.monotonic() - self.last_sent >= KEEPALIVE_SECONDS

    def after_poll(self, events: list[str], end: str | None) -> tuple[list[str], bool]:
        """What to send after one poll, and whether the stream is over (the one decision the
        sync and async streams share)."""
        if end is not None:
            return [*events, end], True
        if self.expired():
            return [*events, _TIME_LIMIT], True
        if events:
            self.sent()
            return events, False
        if self.keepalive_due():
            self.sent()
            return [_KEEPALIVE], False
        return [], False


def _sync_events(run_id: int, after: int, grant: StreamGrant) -> Iterator[str]:
    clock = _Clock()
    try:
        yield _RETRY
        while True:
            events, after, end = _poll(run_id, after, grant)
            chunks, over = clock.after_poll(events, end)
            yield from chunks
            if over:
                return
            # A WSGI worker has no event loop to wait on: this thread is the stream's.
            time.sleep(settings.RUNWAY_API_STREAM_POLL_SECONDS)
    finally:
        close_grant(grant)


async def _async_events(run_id: int, after: int, grant: StreamGrant) -> AsyncIterator[str]:
    clock = _Clock()
    try:
        yield _RETRY
        poll = sync_to_async(_poll)
        while True:
            events, after, end = await poll(run_id, after, grant)
            chunks, over = clock.after_poll(events, end)
            for chunk in chunks:
                yield chunk
            if over:
                return
            await asyncio.sleep(settings.RUNWAY_API_STREAM_POLL_SECONDS)
    finally:
        await sync_to_async(close_grant)(grant)


def _event_stream(
    request: HttpRequest, run_id: int, after: int, grant: StreamGrant
) -> StreamingHttpResponse:
    # Django buffers a sync iterator whole under ASGI (and an async one under WSGI), which
    # would deliver a live log only once the run ended: hand each server the kind it streams.
    content: Iterator[str] | AsyncIterator[str] = (
        _async_events(run_id, after, grant)
        if isinstance(request, ASGIRequest)
        else _sync_events(run_id, after, grant)
    )
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    # A stream closed before it started never runs its generator's cleanup: free the slots here.
    response._resource_closers.append(partial(close_grant, grant))  # type: ignore[attr-defined]
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response


# --- Workers -----------------------------------------------------------------------------------


def _health(worker: WorkerHeartbeat, now: datetime) -> str:
    if worker.stopped_at is not None:
        return "stopped"
    return "stale" if now - worker.last_seen >= WORKER_STALE_AFTER else "alive"


def _int_ids(raw: Any) -> list[int]:
    # current_run_ids is JSON written by workers: tolerate anything that is not a list of ints.
    if not isinstance(raw, list):
        return []
    return [i for i in raw if isinstance(i, int) and not isinstance(i, bool)]


@router.get("/workers", response=responses({200: WorkersOut}, READ_ERRORS))
def list_workers(request: HttpRequest) -> dict[str, Any]:
    """Every worker's heartbeat. Only runs of your workspaces are named."""
    user = caller(request)
    now = timezone.now()
    heartbeats = list(WorkerHeartbeat.objects.order_by("-last_seen", "worker_id"))
    all_ids = {i for w in heartbeats for i in _int_ids(w.current_run_ids)}
    ours = set(
        Run.objects.filter(pk__in=all_ids, workspace__in=workspaces_for(user)).values_list(
            "pk", flat=True
        )
    )
    workers = []
    for worker in heartbeats:
        ids = _int_ids(worker.current_run_ids)
        workers.append(
            {
                "worker_id": worker.worker_id,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "concurrency": worker.concurrency,
                "health": _health(worker, now),
                "started_at": worker.started_at,
                "last_seen": worker.last_seen,
                "stopped_at": worker.stopped_at,
                "run_ids": [i for i in ids if i in ours],
                "other_runs": sum(1 for i in ids if i not in ours),
            }
        )
    return {"workers": workers}


@router.post("/workers", response=responses({200: WorkerActionOut}, WRITE_ERRORS))
def act_on_workers(request: HttpRequest, payload: WorkerAction) -> dict[str, Any]:
    """health_check (anyone: the parts' status, and only your workspaces' runs); rescue every
    stale running run now, or cleanup old heartbeats (site administrators: both act on every
    workspace)."""
    user = caller(request)
    if payload.action == "health_check":
        report = health_report() if user.is_superuser else health_report_for(user)
        return {"action": payload.action, "health": report}
    require_site_admin(user)
    if payload.action == "rescue":
        requeued, failed = engine.rescue_stale_running()
        return {"action": payload.action, "requeued": requeued, "failed": failed}
    cutoff = timezone.now() - HEARTBEAT_CLEANUP_AGE
    deleted, _ = WorkerHeartbeat.objects.filter(
        Q(stopped_at__lt=cutoff) | Q(last_seen__lt=cutoff)
    ).delete()
    return {"action": payload.action, "deleted": deleted}
