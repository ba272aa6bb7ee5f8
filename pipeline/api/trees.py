"""/api/…/tree and /api/batches: the tree with its counts, bulk subtask generation, a whole-tree
launch, and a batch's progress, Stop and Retry: everything the Stories and Subtasks pages do.

Every lookup goes through features.access (outsiders 404, viewers 403 on writes); the writes
call the engine's services, as the pages' buttons do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import Http404, HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from features.access import get_feature, get_workspace, workspaces_for
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
from features.models import Feature
from pipeline import engine
from pipeline import tree_queries as queries
from pipeline.models import Batch

router = Router()

TreeState = Literal["todo", "in_progress", "blocked", "failed", "done"]
TreeKind = Literal["story", "subtask"]


# --- Schemas -----------------------------------------------------------------------------------


class CountsOut(Schema):
    epics: int
    stories: int
    subtasks: int
    todo: int
    in_progress: int
    blocked: int
    failed: int
    done: int


class DependencyOut(Schema):
    id: int
    title: str


class ItemOut(Schema):
    id: int
    title: str
    kind: str
    stage: str
    status: str
    status_note: str
    state: str = Field(description="todo, in_progress, blocked, failed or done.")
    parent: int | None
    description: str
    depends_on: list[DependencyOut]


class StoryOut(ItemOut):
    subtasks: list[ItemOut]


class BatchCardOut(Schema):
    id: int
    title: str
    kind: str
    stage: str
    state: str = Field(description="running, queued, waiting, decision, done, failed, stopped.")
    note: str
    step: str


class BatchOut(Schema):
    id: int
    kind: str
    root: int | None
    created_at: datetime
    finished_at: datetime | None
    stopped_at: datetime | None
    elapsed_seconds: int
    total: int
    done: int
    in_progress: int
    pending: int
    failed: int
    message: str = Field(description='Once finished: "24 subtasks added to 6 stories".')
    summary: dict[str, Any]
    cards: list[BatchCardOut]


class EpicRef(Schema):
    id: int
    title: str
    stage: str


class EpicOut(Schema):
    epic: EpicRef | None
    counts: CountsOut
    batch: BatchOut | None
    stories: list[StoryOut]


class TreeOut(Schema):
    counts: CountsOut
    filters: dict[str, str | None]
    epics: list[EpicOut]


class SkippedOut(Schema):
    id: int
    title: str
    reason: str


class StartedOut(Schema):
    batch: BatchOut
    runs: list[int]
    skipped: list[SkippedOut]


class SubtasksRequest(Input):
    stories: list[Id] | None = Field(
        default=None,
        max_length=500,
        description="Story ids (of this epic) to generate for; omitted or null: all of them.",
    )


class StopOut(Schema):
    stopped: int
    batch: BatchOut


class RetryOut(Schema):
    runs: list[int]
    batch: BatchOut


# --- Helpers -----------------------------------------------------------------------------------


def _epic(request: HttpRequest, id: int, *, write: bool = False) -> Feature:
    feature, _ = get_feature(caller(request), id, write=write)
    if feature.kind != Feature.Kind.EPIC:
        kind = Feature.Kind(feature.kind).label.lower()
        raise ApiError(422, "not_an_epic", f"Card #{feature.pk} is a {kind}, not an epic.")
    return feature


def _batch(request: HttpRequest, id: int, *, write: bool = False) -> Batch:
    batch = Batch.objects.filter(pk=id).select_related("workspace", "root").first()
    if batch is None:
        raise Http404("No such batch.")
    get_workspace(caller(request), batch.workspace.slug, write=write)  # outsiders: 404
    return batch


def _started(started: engine.Started) -> dict[str, Any]:
    return {
        "batch": engine.progress(started.batch).as_dict(),
        "runs": [r.pk for r in started.runs],
        "skipped": [{"id": c.pk, "title": c.title, "reason": why} for c, why in started.skipped],
    }


# --- The tree ----------------------------------------------------------------------------------


@router.get("/workspaces/{slug}/tree", response=responses({200: TreeOut}, READ_ERRORS))
def workspace_tree(
    request: HttpRequest, slug: Slug, status: TreeState | None = None, kind: TreeKind | None = None
) -> dict[str, Any]:
    """The Stories page as JSON: every epic's stories with their subtasks, and counts (the KPI
    cards: stories, subtasks, to do, in progress, blocked, failed, done). `status` and `kind`
    filter what is listed; the counts are of everything."""
    workspace, _ = get_workspace(caller(request), slug)
    return queries.build_tree(workspace, status=status or "", kind=kind or "").as_dict()


@router.get("/features/{id}/tree", response=responses({200: EpicOut}, READ_ERRORS))
def epic_tree(request: HttpRequest, id: Id) -> dict[str, Any]:
    """One epic's tree: its stories, their subtasks, counts and its latest batch's progress."""
    epic = _epic(request, id)
    return queries.build_tree(epic.workspace, epic=epic).groups[0].as_dict()


@router.post("/features/{id}/subtasks", response=responses({201: StartedOut}, LAUNCH_ERRORS))
def generate_subtasks(
    request: HttpRequest, id: Id, payload: SubtasksRequest | None = None
) -> Status[dict[str, Any]]:
    """Generate subtasks for all of the epic's stories, or for `stories`: one batch of runs,
    a few at a time under the workspace's run limit. Stories that have subtasks already are
    left out (`skipped`). Counts as one launch for the rate limit."""
    epic = _epic(request, id, write=True)
    user = caller(request)
    check_launch_rate(user)
    ids = payload.stories if payload is not None else None
    started = engine.generate_subtasks(epic, user, story_ids=list(ids) if ids is not None else None)
    return Status(201, _started(started))


@router.post("/features/{id}/tree/launch", response=responses({201: StartedOut}, LAUNCH_ERRORS))
def launch_tree(request: HttpRequest, id: Id) -> Status[dict[str, Any]]:
    """Launch the epic's whole tree: its stories' pipelines, then their subtasks', in
    dependency order (the epic's own first, when it has no stories yet)."""
    epic = _epic(request, id, write=True)
    user = caller(request)
    check_launch_rate(user)
    return Status(201, _started(engine.launch_tree(epic, user)))


# --- Batches -----------------------------------------------------------------------------------


@router.get("/batches", response=responses({200: list[BatchOut]}, READ_ERRORS))
def list_batches(
    request: HttpRequest, workspace: Slug | None = None, root: Id | None = None
) -> list[dict[str, Any]]:
    """Recent batches (50, newest first) of your workspaces, one workspace or one epic."""
    user = caller(request)
    batches = Batch.objects.filter(workspace__in=workspaces_for(user)).select_related("root")
    if workspace:
        batches = batches.filter(workspace=get_workspace(user, workspace)[0])
    if root is not None:
        batches = batches.filter(root=get_feature(user, root)[0])
    return [engine.progress(b).as_dict() for b in batches.order_by("-created_at", "-id")[:50]]


@router.get("/batches/{id}", response=responses({200: BatchOut}, READ_ERRORS))
def get_batch(request: HttpRequest, id: Id) -> dict[str, Any]:
    """A batch's progress: N of M done, what is running now, elapsed time, and once it is
    finished what it added ("24 subtasks added to 6 stories")."""
    return engine.progress(_batch(request, id)).as_dict()


@router.post("/batches/{id}/stop", response=responses({200: StopOut}, WRITE_ERRORS))
def stop_batch(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Stop every run of the batch that has not ended, waiting ones included."""
    batch = _batch(request, id, write=True)
    stopped = engine.stop_batch(batch, caller(request))
    return {"stopped": stopped, "batch": engine.progress(batch).as_dict()}


@router.post("/batches/{id}/retry", response=responses({200: RetryOut}, LAUNCH_ERRORS))
def retry_batch(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Start again every card of the batch whose last run failed, was stopped or rejected."""
    batch = _batch(request, id, write=True)
    user = caller(request)
    check_launch_rate(user)
    runs = engine.retry_batch(batch, user)
    return {"runs": [r.pk for r in runs], "batch": engine.progress(batch).as_dict()}
