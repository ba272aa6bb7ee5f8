"""/api/workspaces and /api/features: cards as JSON, through the same actions as the board.

Every lookup goes through features.access (outsiders 404, viewers 403 on writes). Text comes
back raw: JSON is inert, and pages that show it escape or sanitise it themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from features.access import get_feature, get_workspace, workspaces_for
from features.actions import FeatureError, do_update_feature
from features.api.base import (
    LAUNCH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiError,
    Description,
    Id,
    Input,
    Note,
    Position,
    Slug,
    StageKey,
    Title,
    Version,
    caller,
    check_launch_rate,
    responses,
)
from features.models import Artifact, Feature, Membership, Stage, Workspace
from pipeline import engine
from pipeline.models import Run

router = Router()

Kind = Literal["feature", "epic", "story", "task", "incident"]


# --- Schemas -----------------------------------------------------------------------------------


class StageOut(Schema):
    key: str
    name: str
    board: str
    position: int
    is_done: bool
    is_live: bool


class WorkspaceOut(Schema):
    slug: str
    name: str
    template: str
    role: str
    automation_mode: str
    stop_stage: str | None
    stages: list[StageOut]


class FeatureOut(Schema):
    id: int
    title: str
    kind: str
    workspace: str
    stage: str
    status: str
    status_note: str
    parent: int | None
    position: int
    description: str
    version: int
    active_run: int | None
    created_at: datetime
    updated_at: datetime


class FeatureCreated(FeatureOut):
    run_id: int | None = None
    pipeline: list[str] | None = None


class ChildOut(Schema):
    id: int
    title: str
    kind: str
    stage: str
    status: str


class ArtifactOut(Schema):
    id: int
    name: str
    kind: str
    version: int
    run: int | None
    content: str
    data: dict[str, Any]
    truncated: bool = Field(description="The model stopped at its output limit: may be cut short.")
    created_at: datetime


class FeatureDetail(FeatureOut):
    children: list[ChildOut]
    artifacts: list[ArtifactOut] = Field(description="The latest version of each artifact.")


class FeaturePage(Schema):
    count: int
    items: list[FeatureOut]


class LaunchOut(Schema):
    run_id: int
    pipeline: list[str]
    resumed: bool


class StopOut(Schema):
    stopped: int


class FeatureCreate(Input):
    workspace: Slug
    title: Title
    description: Description = ""
    kind: Kind = "feature"
    parent: Id | None = Field(
        default=None, description="A card of the same workspace; 404 if there is none."
    )
    stage: StageKey | None = Field(
        default=None, description="Stage key; default: the board's first stage. 404 if unknown."
    )
    launch: bool = Field(
        default=False, description="Start the card's pipeline too (counts as a launch)."
    )


class FeatureUpdate(Input):
    version: Version = Field(description="The version you read; 409 if stale.")
    title: Title | None = None
    description: Description | None = None


class FeatureMove(Input):
    stage: StageKey
    note: Note = ""
    position: Position | None = Field(default=None, description="Index in the column.")


# --- Shapes ------------------------------------------------------------------------------------


def _with_active_run(cards: QuerySet[Feature]) -> QuerySet[Feature]:
    active = Run.objects.filter(feature=OuterRef("pk"), status__in=Run.ACTIVE_STATUSES)
    return cards.select_related("workspace", "stage").annotate(
        active_run_id=Subquery(active.values("pk")[:1])
    )


def feature_out(feature: Feature) -> dict[str, Any]:
    active = getattr(feature, "active_run_id", None)
    if not hasattr(feature, "active_run_id"):
        active = (
            Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES)
            .values_list("pk", flat=True)
            .first()
        )
    return {
        "id": feature.pk,
        "title": feature.title,
        "kind": feature.kind,
        "workspace": feature.workspace.slug,
        "stage": feature.stage.key,
        "status": feature.status,
        "status_note": feature.status_note,
        "parent": feature.parent_id,
        "position": feature.position,
        "description": feature.description,
        "version": feature.version,
        "active_run": active,
        "created_at": feature.created_at,
        "updated_at": feature.updated_at,
    }


def artifact_out(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": artifact.pk,
        "name": artifact.name,
        "kind": artifact.kind,
        "version": artifact.version,
        "run": artifact.run_id,
        "content": artifact.content,
        "data": artifact.data if isinstance(artifact.data, dict) else {"value": artifact.data},
        "truncated": artifact.truncated,
        "created_at": artifact.created_at,
    }


def _fresh(pk: int) -> Feature:
    return _with_active_run(Feature.objects.filter(pk=pk)).get()


def _stage(workspace: Workspace, key: str) -> Stage:
    stage = workspace.stages.filter(key=key).first()
    if stage is None:
        keys = ", ".join(
            workspace.stages.order_by("board", "position").values_list("key", flat=True)
        )
        raise ApiError(404, "not_found", f"No stage {key!r} here; stages: {keys}.", field="stage")
    return stage


# --- Workspaces --------------------------------------------------------------------------------


@router.get("/workspaces", response=responses({200: list[WorkspaceOut]}, READ_ERRORS))
def list_workspaces(request: HttpRequest) -> list[dict[str, Any]]:
    """The workspaces you belong to, with your role and their stages."""
    user = caller(request)
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("workspace", "workspace__stop_stage")
        .order_by("workspace__name")
    )
    workspace_ids = [m.workspace_id for m in memberships]
    stages: dict[int, list[Stage]] = {}
    for stage in Stage.objects.filter(workspace_id__in=workspace_ids).order_by("board", "position"):
        stages.setdefault(stage.workspace_id, []).append(stage)
    return [
        {
            "slug": m.workspace.slug,
            "name": m.workspace.name,
            "template": m.workspace.template,
            "role": m.role,
            "automation_mode": m.workspace.automation_mode,
            "stop_stage": m.workspace.stop_stage.key if m.workspace.stop_stage else None,
            "stages": stages.get(m.workspace_id, []),
        }
        for m in memberships
    ]


# --- Features ----------------------------------------------------------------------------------


@router.post("/features", response=responses({201: FeatureCreated}, LAUNCH_ERRORS))
def create_feature(request: HttpRequest, payload: FeatureCreate) -> Status[dict[str, Any]]:
    """Create a card; with "launch": true its pipeline starts in the same transaction."""
    user = caller(request)
    workspace, _ = get_workspace(user, payload.workspace, write=True)
    parent = None
    if payload.parent is not None:
        parent = Feature.objects.filter(pk=payload.parent, workspace=workspace).first()
        if parent is None:
            raise ApiError(404, "not_found", "No such card in this workspace.", field="parent")
    stage = _stage(workspace, payload.stage) if payload.stage else None
    if payload.launch:
        check_launch_rate(user)
    try:
        created = engine.create_feature(
            workspace,
            title=payload.title,
            description=payload.description,
            kind=payload.kind,
            parent=parent,
            stage=stage,
            user=user,
            launch=bool(payload.launch),
        )
    except FeatureError as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    feature, launched = created.feature, created.launched
    data: dict[str, Any] = feature_out(_fresh(feature.pk))
    if launched is not None:
        data["run_id"], data["pipeline"] = launched.run.pk, launched.pipeline
    return Status(201, data)


@router.get("/features", response=responses({200: FeaturePage}, READ_ERRORS))
def list_features(
    request: HttpRequest,
    workspace: Slug | None = None,
    stage: StageKey | None = None,
    parent: Id | None = None,
    kind: Kind | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """Cards of your workspaces (or one of them), in board order."""
    user = caller(request)
    cards = Feature.objects.filter(workspace__in=workspaces_for(user))
    if workspace:
        cards = cards.filter(workspace=get_workspace(user, workspace)[0])
    if parent is not None:
        cards = cards.filter(parent=get_feature(user, parent)[0])
    if stage:
        cards = cards.filter(stage__key=stage)
    if kind:
        cards = cards.filter(kind=kind)
    cards = cards.order_by("workspace__name", "stage__board", "stage__position", "position", "id")
    return {
        "count": cards.count(),
        "items": [feature_out(c) for c in _with_active_run(cards)[offset : offset + limit]],
    }


@router.get("/features/{id}", response=responses({200: FeatureDetail}, READ_ERRORS))
def get_feature_detail(request: HttpRequest, id: Id) -> dict[str, Any]:
    """One card with its children and the latest version of each artifact."""
    feature, _ = get_feature(caller(request), id)
    feature = _fresh(feature.pk)
    latest: dict[str, Artifact] = {}
    for artifact in Artifact.objects.filter(feature=feature).order_by("name", "-version"):
        latest.setdefault(artifact.name, artifact)
    return {
        **feature_out(feature),
        "children": [
            {"id": c.pk, "title": c.title, "kind": c.kind, "stage": c.stage.key, "status": c.status}
            for c in feature.children.select_related("stage").order_by("id")
        ],
        "artifacts": [artifact_out(a) for a in latest.values()],
    }


@router.patch("/features/{id}", response=responses({200: FeatureOut}, WRITE_ERRORS))
def update_feature(request: HttpRequest, id: Id, payload: FeatureUpdate) -> dict[str, Any]:
    """Edit the title or description. Send the `version` you read: a stale one is a 409."""
    feature, _ = get_feature(caller(request), id, write=True)
    try:
        # Titles were checked by the schema, so the action's only refusal left is the version.
        do_update_feature(
            feature,
            expected_version=payload.version,
            title=payload.title,
            description=payload.description,
        )
    except FeatureError as exc:
        raise ApiError(409, "stale_version", str(exc), field="version") from exc
    return feature_out(_fresh(feature.pk))


@router.post("/features/{id}/move", response=responses({200: FeatureOut}, WRITE_ERRORS))
def move_feature(request: HttpRequest, id: Id, payload: FeatureMove) -> dict[str, Any]:
    """Move a card to a stage (optionally to an index in its column); automation may start."""
    feature, _ = get_feature(caller(request), id, write=True)
    stage = _stage(feature.workspace, payload.stage)
    engine.move_feature(
        feature, stage, user=caller(request), position=payload.position, note=payload.note
    )
    return feature_out(_fresh(feature.pk))


@router.post("/features/{id}/launch", response=responses({201: LaunchOut}, LAUNCH_ERRORS))
def launch_feature(request: HttpRequest, id: Id) -> Status[dict[str, Any]]:
    """Start the card's pipeline, or resume it from the stage that failed."""
    user = caller(request)
    feature, _ = get_feature(user, id, write=True)
    check_launch_rate(user)
    launched = engine.launch_pipeline(feature, user)
    data = {"run_id": launched.run.pk, "pipeline": launched.pipeline, "resumed": launched.resumed}
    return Status(201, data)


@router.post("/features/{id}/launch/stop", response=responses({200: StopOut}, WRITE_ERRORS))
def stop_feature(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Stop the card's pipeline: its active run is cancelled and the chain ends."""
    user = caller(request)
    feature, _ = get_feature(user, id, write=True)
    return {"stopped": engine.stop_pipeline(feature, user)}
