"""Read models for the "Runs & workers" page: a constant number of queries however many runs.

Every run query is scoped to one workspace. Workers are shared by all workspaces, so the page
lists them all, but only names the runs of the workspace being viewed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Q, QuerySet, Sum
from django.http import Http404, QueryDict
from django.utils import timezone

from features.models import Stage, Workspace
from pipeline.health import check_broker
from pipeline.models import WORKER_STALE_AFTER, BulkAction, Run, WorkerHeartbeat
from pipeline.providers import provider_names

RUNS_PER_PAGE = 50
FAILURE_WINDOW = timedelta(hours=1)


def ago(seconds: float) -> str:
    """Short relative age for a heartbeat: "12 s ago", "3 min ago", "5 h ago", "2 d ago"."""
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def format_duration(duration: timedelta | None) -> str:
    if duration is None:
        return ""
    seconds = max(int(duration.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


# --- Runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilters:
    """The table's GET filters, already checked: an unknown value means "no filter"."""

    status: str = ""
    stage: str = ""

    @classmethod
    def from_query(cls, params: QueryDict, stages: list[Stage]) -> RunFilters:
        status = params.get("status", "")
        stage = params.get("stage", "")
        return cls(
            status=status if status in Run.Status.values else "",
            stage=stage if any(s.key == stage for s in stages) else "",
        )

    @property
    def active(self) -> bool:
        return bool(self.status or self.stage)


@dataclass(frozen=True)
class RunRow:
    run: Run
    duration: str

    @property
    def can_rescue(self) -> bool:
        return self.run.status == Run.Status.RUNNING

    @property
    def can_cancel(self) -> bool:
        return self.run.is_active


def workspace_stages(workspace: Workspace) -> list[Stage]:
    """The stage filter's choices: both boards, in board order."""
    return list(Stage.objects.filter(workspace=workspace).order_by("board", "position"))


def _runs(workspace: Workspace) -> QuerySet[Run]:
    # The result JSON holds whole generated documents and the card's description can be 20k
    # characters: the table shows neither, so a page of 50 rows does not load them.
    return (
        Run.objects.filter(workspace=workspace)
        .select_related("feature", "stage")
        .defer("result", "skill_versions", "feature__description", "feature__health_check")
        .order_by("-created_at", "-id")
    )


def _row(run: Run) -> RunRow:
    return RunRow(run=run, duration=format_duration(run.duration))


@dataclass(frozen=True)
class RunsPage:
    page: Page[Run]
    rows: list[RunRow]


def runs_page(workspace: Workspace, filters: RunFilters, page_number: str | None) -> RunsPage:
    """Newest runs first, 50 a page; two queries (count + page) whatever the filters."""
    runs = _runs(workspace)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.stage:
        runs = runs.filter(stage__key=filters.stage)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(page_number)
    return RunsPage(page=page, rows=[_row(run) for run in page.object_list])


def run_in(workspace: Workspace, run_id: int) -> Run:
    """One run of this workspace, or 404: an action never reaches across workspaces."""
    run = _runs(workspace).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run in this workspace.")
    return run


def run_row(workspace: Workspace, run_id: int) -> RunRow:
    return _row(run_in(workspace, run_id))


# --- Summary ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    queued: int
    running: int
    awaiting_approval: int
    # None when the broker does not answer: the page says "unknown" rather than a wrong 0.
    messages_waiting: int | None
    failed_last_hour: int
    finished_last_hour: int
    # What this workspace's runs created this month cost (the budget counts the same runs).
    spent_this_month: Decimal = Decimal(0)
    monthly_budget: Decimal | None = None

    @property
    def failure_percent(self) -> float | None:
        if not self.finished_last_hour:
            return None
        return round(100 * self.failed_last_hour / self.finished_last_hour, 1)


def summary(workspace: Workspace, now: datetime | None = None) -> Summary:
    now = now or timezone.now()
    # finished_at, not created_at: a run queued two hours ago that failed a minute ago counts.
    recent = Q(finished_at__gte=now - FAILURE_WINDOW, status__in=Run.FINISHED_STATUSES)
    counts = Run.objects.filter(workspace=workspace).aggregate(
        queued=Count("pk", filter=Q(status=Run.Status.QUEUED)),
        running=Count("pk", filter=Q(status=Run.Status.RUNNING)),
        awaiting_approval=Count("pk", filter=Q(status=Run.Status.AWAITING_APPROVAL)),
        failed=Count("pk", filter=recent & Q(status=Run.Status.FAILED)),
        finished=Count("pk", filter=recent),
        spent=Sum("cost_usd", filter=Q(created_at__gte=month_start(now))),
    )
    broker = check_broker()
    return Summary(
        queued=counts["queued"],
        running=counts["running"],
        awaiting_approval=counts["awaiting_approval"],
        messages_waiting=broker.get("messages_waiting") if broker["ok"] else None,
        failed_last_hour=counts["failed"],
        finished_last_hour=counts["finished"],
        spent_this_month=counts["spent"] or Decimal(0),
        monthly_budget=workspace.monthly_budget_usd,
    )


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


# --- Workers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRow:
    worker: WorkerHeartbeat
    health: str  # "alive" | "stale" | "stopped"
    last_seen_ago: str
    # Ids of the runs of *this* workspace the worker is on; other workspaces' runs are counted
    # but not named, since every run query is scoped to the viewer's workspace.
    run_ids: list[int] = field(default_factory=list)
    other_runs: int = 0


def worker_health(worker: WorkerHeartbeat, now: datetime) -> str:
    if worker.stopped_at is not None:
        return "stopped"
    if now - worker.last_seen >= WORKER_STALE_AFTER:
        return "stale"
    return "alive"


def _run_ids(raw: Any) -> list[int]:
    # current_run_ids is JSON written by workers: tolerate anything that is not a list of ints.
    if not isinstance(raw, list):
        return []
    return [i for i in raw if isinstance(i, int) and not isinstance(i, bool)]


def workers(workspace: Workspace, now: datetime | None = None) -> list[WorkerRow]:
    """Every worker heartbeat, live ones first (two queries at most)."""
    now = now or timezone.now()
    heartbeats = list(
        WorkerHeartbeat.objects.order_by(
            F("stopped_at").asc(nulls_first=True), "-last_seen", "worker_id"
        )
    )
    all_ids = {i for w in heartbeats for i in _run_ids(w.current_run_ids)}
    ours = (
        set(Run.objects.filter(workspace=workspace, pk__in=all_ids).values_list("pk", flat=True))
        if all_ids
        else set()
    )
    rows = []
    for worker in heartbeats:
        ids = _run_ids(worker.current_run_ids)
        rows.append(
            WorkerRow(
                worker=worker,
                health=worker_health(worker, now),
                last_seen_ago=ago((now - worker.last_seen).total_seconds()),
                run_ids=[i for i in ids if i in ours],
                other_runs=sum(1 for i in ids if i not in ours),
            )
        )
    return rows


def status_context(workspace: Workspace) -> dict[str, Any]:
    """What the polled fragment shows: summary counts and the workers."""
    now = timezone.now()
    return {"summary": summary(workspace, now), "workers": workers(workspace, now), "now": now}


# --- Bulk actions -------------------------------------------------------------------------------

RECENT_BULK_ACTIONS = 5


@dataclass(frozen=True)
class BulkPanel:
    """The bulk panel's choices and the workspace's latest jobs."""

    actions: list[tuple[str, str]]
    statuses: list[tuple[str, str]]
    error_kinds: list[tuple[str, str]]
    providers: list[str]
    jobs: list[BulkAction]


def bulk_panel(workspace: Workspace) -> BulkPanel:
    used = Run.objects.filter(workspace=workspace).values_list("provider", flat=True).distinct()
    return BulkPanel(
        actions=list(BulkAction.Action.choices),
        statuses=[
            (value, label)
            for value, label in Run.Status.choices
            if value not in (Run.Status.SUCCEEDED,)
        ],
        error_kinds=[(value, label) for value, label in Run.ErrorKind.choices if value],
        providers=sorted({*provider_names(), *used} - {""}),
        jobs=list(
            BulkAction.objects.filter(workspace=workspace)
            .select_related("actor")
            .order_by("-created_at", "-id")[:RECENT_BULK_ACTIONS]
        ),
    )
