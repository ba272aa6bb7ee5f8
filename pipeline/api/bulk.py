"""/api/bulk-actions: retry, cancel or rescue every run matching a filter, as one job.

First a dry run (``POST /api/bulk-actions/preview``: the count and the newest matches), then
the action confirmed with that count (``POST /api/bulk-actions``), then its progress
(``GET /api/bulk-actions/{id}``). Workspace owners and admins only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.contrib.auth.models import User
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field, StringConstraints

from features.access import get_workspace, workspaces_for
from features.api.base import (
    LAUNCH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiError,
    Id,
    Input,
    Slug,
    caller,
    check_launch_rate,
    responses,
)
from features.models import Workspace
from pipeline import bulk
from pipeline.api.runs import RunOut, _runs, run_out
from pipeline.bulk.filters import MAX_TEXT
from pipeline.models import BulkAction

router = Router()

FilterText = Annotated[
    str,
    StringConstraints(max_length=MAX_TEXT),
    Field(json_schema_extra={"pattern": "^[^\\u0000]*$"}),
]
WHEN = "A date (2026-11-30, midnight) or time (2026-11-30T14:00, ISO 8601); local time if no zone."


class RunFilterIn(Input):
    """Every field is optional; "" or absent means any. Unknown values are a 400 that lists
    the known ones."""

    status: FilterText | None = Field(None, description="A run status the action acts on.")
    stage: FilterText | None = Field(None, description="A stage key of the workspace.")
    error_kind: FilterText | None = Field(
        None, description="transient, permanent, gate, lost, deferred or cancelled."
    )
    provider: FilterText | None = Field(None, description="offline, anthropic, openai, cli…")
    created_after: FilterText | None = Field(None, description=f"Inclusive. {WHEN}")
    created_before: FilterText | None = Field(None, description=f"Exclusive. {WHEN}")
    finished_after: FilterText | None = Field(None, description=f"Inclusive. {WHEN}")
    finished_before: FilterText | None = Field(None, description=f"Exclusive. {WHEN}")


Action = Literal["retry", "cancel", "rescue"]


class BulkPreviewIn(Input):
    workspace: Slug
    action: Action
    filter: RunFilterIn | None = Field(None, description="Absent: every run the action acts on.")


class BulkActionIn(BulkPreviewIn):
    expected_count: int = Field(
        ge=0, le=2**31 - 1, description="The dry run's count you confirm; 409 if it changed."
    )


class BulkPreviewOut(Schema):
    action: str
    filter: dict[str, str]
    count: int = Field(description="How many runs the action would act on now.")
    sample: list[RunOut] = Field(description="The newest matching runs (at most 10).")


class BulkItemOut(Schema):
    run: int
    outcome: Literal["pending", "done", "skipped", "failed"]
    message: str
    new_run: int | None = Field(description="The run a retry created.")


class BulkOut(Schema):
    id: int
    workspace: str
    actor: str | None
    action: str
    filter: dict[str, str]
    source: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    total: int
    done: int
    skipped: int = Field(description="Runs that no longer qualified when their turn came.")
    failed: int
    pending: int
    progress_percent: int
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BulkDetailOut(BulkOut):
    items: list[BulkItemOut]


class BulkListOut(Schema):
    items: list[BulkOut]


def _checked(user: User, payload: BulkPreviewIn) -> tuple[Workspace, str, bulk.RunFilter]:
    workspace, _ = get_workspace(user, payload.workspace, admin=True)
    try:
        run_filter = bulk.parse_filter(
            payload.filter.model_dump(exclude_none=True) if payload.filter else {},
            workspace,
            payload.action,
        )
    except bulk.BadFilter as exc:
        raise ApiError(400, "bad_filter", exc.message, field=f"filter.{exc.field}") from exc
    return workspace, payload.action, run_filter


def _job_for(user: User, pk: int, *, admin: bool = False) -> BulkAction:
    job = (
        BulkAction.objects.select_related("workspace", "actor")
        .filter(pk=pk, workspace__in=workspaces_for(user))
        .first()
    )
    if job is None:
        raise Http404("No such bulk action.")
    get_workspace(user, job.workspace.slug, admin=admin)
    return job


@router.post("/bulk-actions/preview", response=responses({200: BulkPreviewOut}, WRITE_ERRORS))
def preview_bulk_action(request: HttpRequest, payload: BulkPreviewIn) -> dict[str, Any]:
    """The dry run: how many runs the action would act on, and the newest of them. Nothing
    is written. Owners and admins."""
    workspace, action, run_filter = _checked(caller(request), payload)
    found = bulk.preview(workspace, action, run_filter)
    sample = _runs().filter(pk__in=[r.pk for r in found.sample]).order_by("-created_at", "-id")
    return {
        "action": action,
        "filter": run_filter.as_dict(),
        "count": found.count,
        "sample": [run_out(r) for r in sample],
    }


@router.post("/bulk-actions", response=responses({202: BulkOut}, LAUNCH_ERRORS))
def start_bulk_action(request: HttpRequest, payload: BulkActionIn) -> Status[dict[str, Any]]:
    """Act on every matching run, as one job the workers process in chunks (202). Give the
    dry run's count as `expected_count`: if that many no longer match, nothing is done and the
    409 says how many match now. Retries are ordinary queued runs: the workspace's concurrency
    limit and budget admit them. Owners and admins."""
    user = caller(request)
    workspace, action, run_filter = _checked(user, payload)
    if action == BulkAction.Action.RETRY:
        check_launch_rate(user)
    try:
        job = bulk.start_bulk_action(
            workspace,
            user,
            action,
            run_filter,
            expected_count=payload.expected_count,
            source="api",
        )
    except bulk.BadFilter as exc:
        raise ApiError(400, "bad_filter", exc.message, field=f"filter.{exc.field}") from exc
    except bulk.BulkError as exc:
        raise ApiError(409, exc.code, exc.message, field="expected_count") from exc
    return Status(202, bulk.job_dict(job))


@router.get("/bulk-actions", response=responses({200: BulkListOut}, READ_ERRORS))
def list_bulk_actions(
    request: HttpRequest,
    workspace: Slug | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    """Your workspaces' bulk actions, newest first."""
    user = caller(request)
    jobs = BulkAction.objects.select_related("workspace", "actor").filter(
        workspace__in=workspaces_for(user)
    )
    if workspace:
        jobs = jobs.filter(workspace=get_workspace(user, workspace)[0])
    return {"items": [bulk.job_dict(j) for j in jobs.order_by("-created_at", "-id")[:limit]]}


@router.get("/bulk-actions/{id}", response=responses({200: BulkDetailOut}, READ_ERRORS))
def get_bulk_action(request: HttpRequest, id: Id) -> dict[str, Any]:
    """One bulk action's progress, with what happened to each of its runs."""
    return bulk.job_dict(_job_for(caller(request), id), items=True)


@router.post("/bulk-actions/{id}/cancel", response=responses({200: BulkOut}, WRITE_ERRORS))
def cancel_bulk_action(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Stop a queued or running bulk action: the runs it acted on stay so (409 once it
    ended). Owners and admins."""
    user = caller(request)
    job = _job_for(user, id, admin=True)
    try:
        job = bulk.cancel_bulk_action(job, user)
    except bulk.BulkError as exc:
        raise ApiError(409, "finished", exc.message) from exc
    return bulk.job_dict(job)
