"""A card's displayed status, derived from its runs and blocking dependencies in one place.

``Feature.status`` and ``status_note`` are a cache of :func:`derive`, never written anywhere
else. The engine's transitions mark the cards they touch; the cache is recomputed once, at the
end of the engine transaction that touched them (:func:`engine_transaction`), from what the
database holds under the card's lock. A state cannot stick: whatever raced, the card says what
its runs say once the last transaction commits. (STYLE.md 14: healthchecks' ``get_status()``.)
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from features import events
from features.actions import FINISHED
from features.models import Dependency, Feature
from pipeline.models import Run

Status = Run.Status
CardStatus = Feature.Status

_ACTIVE_TO_CARD = {
    Status.AWAITING_APPROVAL: CardStatus.AWAITING_APPROVAL,
    Status.QUEUED: CardStatus.QUEUED,
    Status.RUNNING: CardStatus.RUNNING,
}


@dataclass(frozen=True)
class LatestRun:
    """The facts of a card's latest run that its status depends on."""

    status: str
    decision: str
    error_kind: str
    card_note: str
    stage_id: int


@dataclass(frozen=True)
class CardFacts:
    stage_id: int
    stage_finished: bool  # a done or live stage
    latest: LatestRun | None
    blockers: tuple[int, ...]  # unfinished cards it depends on


def derive(facts: CardFacts) -> tuple[str, str]:
    """(status, note) of a card: the one rule for what a card shows. Pure.

    In order: an active run speaks for the card; then a result waiting for a decision; then a
    failure in the stage the card is in; a card in a done or live stage is done; a card waiting
    for unfinished dependencies is blocked; a failure elsewhere stays visible (with Retry);
    a stopped or rejected pipeline says so; otherwise the card is idle.
    """
    run = facts.latest
    if run is not None and run.status in _ACTIVE_TO_CARD:
        return _ACTIVE_TO_CARD[Status(run.status)], run.card_note
    if run is not None and run.status == Status.SUCCEEDED and run.decision == Run.Decision.PENDING:
        # A gate's review_required waits on a person like auto_notify, but reads as blocked.
        waiting = CardStatus.BLOCKED if run.error_kind == Run.ErrorKind.GATE else None
        return waiting or CardStatus.AWAITING_APPROVAL, run.card_note
    failed = run is not None and run.status == Status.FAILED
    if failed and run is not None and run.stage_id == facts.stage_id:
        return CardStatus.FAILED, run.card_note
    if facts.stage_finished:
        return CardStatus.DONE, ""
    if facts.blockers:
        blocked_by = ", ".join(f"#{pk}" for pk in facts.blockers)
        return CardStatus.BLOCKED, f"Blocked by {blocked_by}: finish them first"
    if failed and run is not None:
        return CardStatus.FAILED, run.card_note
    if run is not None and run.status in (Status.CANCELLED, Status.SUCCEEDED):
        return CardStatus.IDLE, run.card_note
    return CardStatus.IDLE, ""


def blockers_of(feature_ids: Iterable[int]) -> dict[int, list[int]]:
    """For each card, the ids of the unfinished cards it waits for (one query)."""
    blockers: dict[int, list[int]] = defaultdict(list)
    rows = (
        Dependency.objects.filter(feature_id__in=list(feature_ids))
        .exclude(depends_on__in=Feature.objects.filter(FINISHED))
        .order_by("depends_on_id")
        .values_list("feature_id", "depends_on_id")
    )
    for feature_id, depends_on_id in rows:
        blockers[feature_id].append(depends_on_id)
    return blockers


def facts_of(feature_ids: Iterable[int]) -> dict[int, tuple[int, CardFacts]]:
    """Every card's facts in two queries: {id: (workspace id, facts)}."""
    ids = list(feature_ids)
    latest = Run.objects.filter(feature=OuterRef("pk")).order_by("-created_at", "-id")
    fields = ("status", "decision", "error_kind", "card_note", "stage_id")
    rows = list(
        Feature.objects.filter(pk__in=ids)
        .order_by()
        .annotate(**{f"run_{name}": Subquery(latest.values(name)[:1]) for name in fields})
        .values(
            "pk",
            "workspace_id",
            "stage_id",
            "stage__is_done",
            "stage__is_live",
            *(f"run_{name}" for name in fields),
        )
    )
    blockers = blockers_of(ids)
    facts: dict[int, tuple[int, CardFacts]] = {}
    for row in rows:
        run = (
            LatestRun(**{name: row[f"run_{name}"] for name in fields})
            if row["run_status"] is not None
            else None
        )
        facts[row["pk"]] = (
            row["workspace_id"],
            CardFacts(
                stage_id=row["stage_id"],
                stage_finished=bool(row["stage__is_done"] or row["stage__is_live"]),
                latest=run,
                blockers=tuple(blockers.get(row["pk"], ())),
            ),
        )
    return facts


def settle(
    feature_ids: Iterable[int], *, cards: Iterable[Feature] = ()
) -> dict[int, tuple[str, str]]:
    """Write the derived (status, note) of these cards where it changed; tell the board.

    Call inside the transaction that changed their runs (the engine does, through
    :func:`engine_transaction`). `cards` are in-memory instances to update as well.
    Returns {id: (status, note)}.
    """
    ids = set(feature_ids)
    if not ids:
        return {}
    derived: dict[int, tuple[str, str]] = {}
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    workspaces: dict[int, int] = {}
    for pk, (workspace_id, facts) in facts_of(ids).items():
        status, note = derive(facts)
        derived[pk] = (status, note[:500])
        groups[derived[pk]].append(pk)
        workspaces[pk] = workspace_id
    now = timezone.now()
    for (status, note), pks in groups.items():
        changed = list(
            Feature.objects.filter(pk__in=pks)
            .exclude(status=status, status_note=note)
            .values_list("pk", flat=True)
        )
        if changed:
            Feature.objects.filter(pk__in=changed).update(
                status=status, status_note=note, updated_at=now
            )
            for pk in changed:
                events.card_changed_on_commit(Feature(pk=pk, workspace_id=workspaces[pk]))
    for card in cards:
        if card.pk in derived:
            card.status, card.status_note = derived[card.pk]
    return derived


# --- Once per transaction -------------------------------------------------------------------------

_touched: ContextVar[dict[int, Feature | None] | None] = ContextVar("runway_touched", default=None)


def touch(*cards: Feature | int) -> None:
    """A transition changed these cards' runs (or dependencies): their status is derived again
    at the end of the engine transaction, or at once outside one."""
    pending = _touched.get()
    if pending is None:
        instances = [c for c in cards if isinstance(c, Feature)]
        settle({c.pk if isinstance(c, Feature) else c for c in cards}, cards=instances)
        return
    for card in cards:
        if isinstance(card, Feature):
            pending[card.pk] = card
        else:
            pending.setdefault(card, None)


@contextlib.contextmanager
def engine_transaction() -> Iterator[None]:
    """``transaction.atomic()`` that derives every touched card's status once, before commit.

    Nested uses join the outermost one, so a command that makes several transitions settles
    each card once.
    """
    if _touched.get() is not None:
        with transaction.atomic():
            yield
        return
    pending: dict[int, Feature | None] = {}
    token = _touched.set(pending)
    try:
        with transaction.atomic():
            yield
            # Cards touched while settling (none today) would wait for the next transaction.
            _touched.set(None)
            settle(pending, cards=[c for c in pending.values() if c is not None])
    finally:
        _touched.reset(token)
