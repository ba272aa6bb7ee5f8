"""Runs for the bulk action tests: each on its own card (a card holds one active run)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from features.models import Workspace
from pipeline.models import Run
from tests.engine_helpers import card

Status = Run.Status
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.get_current_timezone())


def run_in(
    workspace: Workspace,
    title: str,
    *,
    status: str = Status.FAILED,
    stage: str = "architecture",
    error_kind: str = Run.ErrorKind.TRANSIENT,
    provider: str = "offline",
    created: datetime | None = None,
    finished: datetime | None = None,
    **extra: Any,
) -> Run:
    """A run of `status` at `stage` on a new card that sits in that stage."""
    feature = card(workspace, title, at=stage)
    created = created or T0
    ended = status in Run.FINISHED_STATUSES
    return Run.objects.create(
        workspace=workspace,
        feature=feature,
        stage=feature.stage,
        status=status,
        error_kind=error_kind if status == Status.FAILED else "",
        error_message="Provider overloaded" if status == Status.FAILED else "",
        provider=provider,
        created_at=created,
        queued_at=created,
        started_at=created if status != Status.QUEUED else None,
        heartbeat_at=created if status == Status.RUNNING else None,
        attempt=1 if status != Status.QUEUED else 0,
        finished_at=(finished or created + timedelta(minutes=1)) if ended else None,
        **extra,
    )


def outage(workspace: Workspace, n: int = 5) -> list[Run]:
    """`n` runs that failed in a provider outage (anthropic, transient)."""
    return [
        run_in(
            workspace,
            f"Outage {i}",
            provider="anthropic",
            created=T0 + timedelta(minutes=i),
        )
        for i in range(n)
    ]
