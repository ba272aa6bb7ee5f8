"""The card page's live panel: where the card's pipeline is and what a person may do next.

One read model for the page and its websocket (pipeline.consumers.card), so a reload and a
live update show the same thing. A fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from features.actions import blocking_dependencies
from features.models import Feature, Membership
from pipeline import card_queries as queries
from pipeline.models import Run


@dataclass
class LivePanel:
    card: Feature  # with last_run, launchable, move_options, url (card_queries)
    run: Run | None  # the card's latest run
    active: bool
    blockers: list[str]  # titles of the unfinished cards this one waits for
    pipeline_since: datetime | None  # when the pipeline the latest run belongs to started
    pipeline_took: float | None  # seconds, once that pipeline has ended

    @property
    def can_launch(self) -> bool:
        return bool(getattr(self.card, "launchable", False)) and not self.active

    @property
    def can_retry(self) -> bool:
        return self.run is not None and self.run.status in (
            Run.Status.FAILED,
            Run.Status.CANCELLED,
        )

    @property
    def can_stop(self) -> bool:
        return self.run is not None and (self.active or self.run.decision == Run.Decision.PENDING)

    @property
    def awaiting_decision(self) -> bool:
        return (
            self.run is not None
            and self.run.status == Run.Status.SUCCEEDED
            and self.run.decision == Run.Decision.PENDING
        )


def live_panel(feature: Feature) -> LivePanel | None:
    """None when the card no longer exists."""
    card = queries.card_for_render(feature.workspace, feature.pk)
    if card is None:
        return None
    run: Run | None = getattr(card, "last_run", None)
    blockers: list[str] = []
    ids = blocking_dependencies(card)
    if ids:
        blockers = list(
            Feature.objects.filter(pk__in=ids).order_by("id").values_list("title", flat=True)
        )
    since, took = _pipeline_span(run)
    return LivePanel(card, run, run is not None and run.is_active, blockers, since, took)


def _pipeline_span(run: Run | None) -> tuple[datetime | None, float | None]:
    """Start of the pipeline `run` belongs to (its first run, following parent links), and
    how long it took once it ended."""
    if run is None:
        return None, None
    runs = {
        r["pk"]: r
        for r in Run.objects.filter(feature_id=run.feature_id).values(
            "pk", "parent_run_id", "started_at", "created_at"
        )
    }
    first = runs.get(run.pk)
    seen: set[int] = set()
    while first is not None and first["parent_run_id"] in runs and first["pk"] not in seen:
        seen.add(first["pk"])
        first = runs[first["parent_run_id"]]
    if first is None:
        return None, None
    since = first["started_at"] or first["created_at"]
    if run.is_active:
        return since, None
    end = run.finished_at or timezone.now()
    return since, max((end - since).total_seconds(), 0.0)


def panel_context(feature: Feature, membership: Membership) -> dict[str, object]:
    return {
        "live": live_panel(feature),
        "feature": feature,
        "membership": membership,
        "workspace": feature.workspace,
    }
