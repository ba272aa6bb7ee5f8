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
from django.db.models import Case, CharField, Exists, OuterRef, Subquery, Value, When
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
class Blocker:
    """A card another one waits for, by name, and how its own last run ended when that is
    why the wait has no end in sight ("failed", "rejected", "stopped"; "" otherwise)."""

    pk: int
    title: str
    outcome: str = ""


@dataclass(frozen=True)
class CardFacts:
    stage_id: int
    stage_finished: bool  # a done or live stage
    latest: LatestRun | None
    # Unfinished cards it depends on; for a waiting run, exactly those its run waits for.
    blockers: tuple[Blocker, ...]
    has_dependents: bool = False
    # What the card shows now (status, note), when read with the facts: a card whose derived
    # value equals it needs no write.
    shown: tuple[str, str] | None = None


def outcome_of(status: str | None, decision: str | None) -> str:
    """How a blocker's last run ended, when that is why its dependents cannot go on."""
    if status == Status.FAILED:
        return "failed"
    if status == Status.CANCELLED:
        return "stopped"
    if status == Status.SUCCEEDED and decision == Run.Decision.REJECTED:
        return "rejected"
    return ""


def blocked_note(blockers: tuple[Blocker, ...], *, waiting: bool = False) -> str:
    """“Blocked by “Schema” (failed), “API””: the names a person recognises, and which of them
    will not finish by themselves. `waiting`: the card's run starts by itself once they do."""
    shown = [
        f"“{b.title if len(b.title) <= 80 else b.title[:79] + '…'}”"
        + (f" ({b.outcome})" if b.outcome else "")
        for b in blockers[:4]
    ]
    if len(blockers) > 4:
        shown.append(f"{len(blockers) - 4} more")
    names = ", ".join(shown)
    if any(b.outcome for b in blockers):
        return f"Blocked by {names}"
    if waiting:
        return f"Waiting for {names}" if blockers else "Waiting for its dependencies"
    return f"Blocked by {names}: finish {'it' if len(blockers) == 1 else 'them'} first"


def derive(facts: CardFacts) -> tuple[str, str]:
    """(status, note) of a card: the one rule for what a card shows. Pure.

    In order: a run waiting for dependencies shows the card blocked by them, by name; another
    active run speaks for the card; then a result waiting for a decision; then a failure in
    the stage the card is in; a card in a done or live stage is done; a card waiting for
    unfinished dependencies is blocked (naming a dependency that failed or was rejected, so
    nobody waits for it forever); a failure elsewhere stays visible (with Retry); a stopped or
    rejected pipeline says so; otherwise the card is idle.
    """
    run = facts.latest
    if run is not None and run.status == Status.WAITING:
        return CardStatus.BLOCKED, blocked_note(facts.blockers, waiting=True)
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
        return CardStatus.BLOCKED, blocked_note(facts.blockers)
    if failed and run is not None:
        return CardStatus.FAILED, run.card_note
    if run is not None and run.status in (Status.CANCELLED, Status.SUCCEEDED):
        return CardStatus.IDLE, run.card_note
    return CardStatus.IDLE, ""


def blockers_of(feature_ids: Iterable[int]) -> dict[int, list[Blocker]]:
    """For each card, the unfinished cards it waits for, with how their last run ended
    (one query)."""
    blockers: dict[int, list[Blocker]] = defaultdict(list)
    latest = Run.objects.filter(feature=OuterRef("depends_on")).order_by("-created_at", "-id")
    rows = (
        Dependency.objects.filter(feature_id__in=list(feature_ids))
        .exclude(depends_on__in=Feature.objects.filter(FINISHED))
        .annotate(
            run_status=Subquery(latest.values("status")[:1]),
            run_decision=Subquery(latest.values("decision")[:1]),
        )
        .order_by("depends_on_id")
        .values_list(
            "feature_id", "depends_on_id", "depends_on__title", "run_status", "run_decision"
        )
    )
    for feature_id, depends_on_id, title, status, decision in rows:
        blockers[feature_id].append(Blocker(depends_on_id, title, outcome_of(status, decision)))
    return blockers


def facts_of(feature_ids: Iterable[int]) -> dict[int, tuple[int, CardFacts]]:
    """Every card's facts in one query (a second for cards with dependencies, a third for
    cards whose run waits): {id: (workspace id, facts)}."""
    ids = list(feature_ids)
    latest = Run.objects.filter(feature=OuterRef("pk")).order_by("-created_at", "-id")
    fields = ("status", "decision", "error_kind", "card_note", "stage_id")
    rows = list(
        Feature.objects.filter(pk__in=ids)
        .order_by()
        .annotate(
            **{f"run_{name}": Subquery(latest.values(name)[:1]) for name in fields},
            # Dependents settled in this same call read the same facts: only others cascade.
            has_dependents=Exists(
                Dependency.objects.filter(depends_on=OuterRef("pk")).exclude(feature_id__in=ids)
            ),
            has_dependencies=Exists(Dependency.objects.filter(feature=OuterRef("pk"))),
        )
        .values(
            "pk",
            "workspace_id",
            "status",
            "status_note",
            "stage_id",
            "stage__is_done",
            "stage__is_live",
            "has_dependents",
            "has_dependencies",
            *(f"run_{name}" for name in fields),
        )
    )
    # Most cards depend on nothing: ask for blockers only for those that do.
    depending = [row["pk"] for row in rows if row["has_dependencies"]]
    blockers = blockers_of(depending) if depending else defaultdict(list)
    waiting = [row["pk"] for row in rows if row["run_status"] == Status.WAITING]
    if waiting:
        from pipeline.engine.waiting import waiting_blockers

        blockers.update(waiting_blockers(waiting))
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
                has_dependents=bool(row["has_dependents"]),
                shown=(row["status"], row["status_note"]),
            ),
        )
    return facts


def settle(
    feature_ids: Iterable[int],
    *,
    cards: Iterable[Feature] = (),
    known: dict[int, tuple[int, CardFacts, bool]] | None = None,
) -> dict[int, tuple[str, str]]:
    """Write the derived (status, note) of these cards where it changed; tell the board.

    Call inside the transaction that changed their runs (the engine does, through
    :func:`engine_transaction`). `cards` are in-memory instances to update as well. A card
    whose status changed and that others depend on settles them too: their note names it
    ("Blocked by “Schema” (failed)"). `known` are cards whose facts the caller holds ({id:
    (workspace id, facts, stored)}, see :func:`touch_known`): they settle without reading them,
    and without a write when `stored` (the caller's own statement stored their status).
    Returns {id: (status, note)}.
    """
    ids = set(feature_ids)
    derived: dict[int, tuple[str, str]] = {}
    instances = list(cards)
    for pk, (workspace_id, facts, stored) in (known or {}).items():
        derived[pk] = card_status(facts) if stored else _write(pk, workspace_id, derive(facts))
        ids.discard(pk)
    while ids:
        cascade = _settle_once(ids, derived)
        ids = cascade - set(derived)
    for card in instances:
        if card.pk in derived:
            card.status, card.status_note = derived[card.pk]
    return derived


def _settle_once(ids: set[int], derived: dict[int, tuple[str, str]]) -> set[int]:
    """Settle `ids` into `derived`; returns the dependents of the cards that changed."""
    changes: dict[int, tuple[str, str]] = {}
    workspaces: dict[int, int] = {}
    with_dependents: set[int] = set()
    for pk, (workspace_id, facts) in facts_of(ids).items():
        derived[pk] = card_status(facts)
        if facts.shown != derived[pk]:
            changes[pk] = derived[pk]
            workspaces[pk] = workspace_id
        if facts.has_dependents:
            with_dependents.add(pk)
    _write_each(changes, workspaces)
    cascade = set(changes) & with_dependents
    if not cascade:
        return set()
    return set(
        Dependency.objects.filter(depends_on_id__in=cascade).values_list("feature_id", flat=True)
    )


def _write(pk: int, workspace_id: int, derived: tuple[str, str]) -> tuple[str, str]:
    """Store (status, note) on one card where it differs (the UPDATE's row count says whether
    it did) and tell the board if so: one query. Returns the clipped (status, note)."""
    status, note = derived[0], derived[1][:500]
    updated = (
        Feature.objects.filter(pk=pk)
        .exclude(status=status, status_note=note)
        .update(status=status, status_note=note, updated_at=timezone.now())
    )
    if updated:
        events.card_changed_on_commit(Feature(pk=pk, workspace_id=workspace_id))
    return status, note


def _write_each(changes: dict[int, tuple[str, str]], workspaces: dict[int, int]) -> None:
    """Store each card's own (status, note) ({id: (status, note)}, read as different from what
    it shows) in one UPDATE, however many cards and values; tell the board about each.

    A task list of six cards blocked by six different cards is six notes: one query, not six.
    """
    if not changes:
        return
    now = timezone.now()
    if len(changes) == 1:
        [(pk, (status, note))] = changes.items()
        Feature.objects.filter(pk=pk).update(status=status, status_note=note, updated_at=now)
    else:
        Feature.objects.filter(pk__in=list(changes)).update(
            status=Case(
                *(When(pk=pk, then=Value(status)) for pk, (status, _) in changes.items()),
                output_field=CharField(),
            ),
            status_note=Case(
                *(When(pk=pk, then=Value(note)) for pk, (_, note) in changes.items()),
                output_field=CharField(),
            ),
            updated_at=now,
        )
    for pk in changes:
        events.card_changed_on_commit(Feature(pk=pk, workspace_id=workspaces[pk]))


def _active_facts(run: LatestRun) -> CardFacts:
    # derive() decides a card whose latest run is queued, running or awaiting approval from
    # that run alone; the stage and blockers it would otherwise look at do not matter.
    assert run.status in _ACTIVE_TO_CARD, run.status
    return CardFacts(stage_id=run.stage_id, stage_finished=False, latest=run, blockers=())


# --- Once per transaction -------------------------------------------------------------------------

_touched: ContextVar[dict[int, Feature | None] | None] = ContextVar("runway_touched", default=None)
# Runs that stopped running in this transaction: each frees a slot of its workspace.
_freed: ContextVar[list[int] | None] = ContextVar("runway_freed", default=None)
# Cards touched with their facts in hand (touch_known): {id: (workspace id, facts, stored)}.
_known: ContextVar[dict[int, tuple[int, CardFacts, bool]] | None] = ContextVar(
    "runway_known", default=None
)
# Cards whose waiting runs may be released: a card they depend on changed stage, or the work
# before them in a tree ended. Looked at once, at the end of the engine transaction.
_waiters: ContextVar[set[int] | None] = ContextVar("runway_waiters", default=None)


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


def slot_freed(run_id: int) -> None:
    """This run stopped running: a run of its workspace deferred for want of a slot may go now.
    Woken once, at the end of the engine transaction (at once outside one)."""
    freed = _freed.get()
    if freed is None:
        from pipeline.engine.admission import wake_deferred

        wake_deferred([run_id])
        return
    freed.append(run_id)


def touch_active(
    feature_id: int, workspace_id: int, run: LatestRun, *, stored: bool = False
) -> None:
    """Like :func:`touch`, for a card whose latest run the caller holds: `run`, queued, running
    or awaiting approval. Its status then derives from that run without reading the card's
    facts (the hot path: a claim, a completion that created the next run).

    Only for a card whose latest run was active before the transaction too: the cards that
    wait for it name it by how its last run ended, which an active run never changed, so they
    need no second look (a move to another stage touches them on its own).

    `stored`: the caller's own statement already stored what this run derives to on the card
    (and told the board if that changed), so nothing is written again.
    """
    touch_known(feature_id, workspace_id, _active_facts(run), stored=stored)


def touch_known(
    feature_id: int, workspace_id: int, facts: CardFacts, *, stored: bool = False
) -> None:
    """Like :func:`touch`, for a card whose facts the caller holds, as they will be at commit:
    its status derives from them without reading them. `stored`: the caller's own statement
    already stored that status (and told the board if it changed).

    The caller answers for the facts: the card's lock is held, its latest run is the one in
    `facts`, and the blockers are complete (a card without dependencies has none). A later
    touch_known or touch_active of the card in the transaction replaces them.
    """
    known = _known.get()
    if known is None:
        if not stored:
            settle((), known={feature_id: (workspace_id, facts, False)})
        return
    known[feature_id] = (workspace_id, facts, stored)


def active_card_status(run: LatestRun) -> tuple[str, str]:
    """(status, note) a card shows while `run` (queued, running or awaiting approval) is its
    latest run: for a transition that stores it in its own statement (see `stored` above)."""
    return card_status(_active_facts(run))


def card_status(facts: CardFacts) -> tuple[str, str]:
    """(status, note) as stored: :func:`derive` with the note clipped to the column."""
    status, note = derive(facts)
    return status, note[:500]


def watch_waiting(*feature_ids: int) -> None:
    """What these cards wait for may have finished: release their waiting runs that may go
    now, at the end of the engine transaction (at once outside one)."""
    if not feature_ids:
        return
    waiters = _waiters.get()
    if waiters is None:
        from pipeline.engine.waiting import release_ready

        with engine_transaction():
            release_ready(feature_ids)
        return
    waiters.update(feature_ids)


@contextlib.contextmanager
def engine_transaction() -> Iterator[None]:
    """``transaction.atomic()`` that, before commit, releases the waiting runs whose
    dependencies finished in it, wakes a deferred run for each slot freed in it, and derives
    every touched card's status once.

    Nested uses join the outermost one, so a command that makes several transitions settles
    each card once.
    """
    if _touched.get() is not None:
        with transaction.atomic():
            yield
        return
    pending: dict[int, Feature | None] = {}
    known: dict[int, tuple[int, CardFacts, bool]] = {}
    waiters: set[int] = set()
    freed: list[int] = []
    token = _touched.set(pending)
    known_token = _known.set(known)
    freed_token = _freed.set(freed)
    waiters_token = _waiters.set(waiters)
    try:
        with transaction.atomic():
            yield
            while waiters:
                from pipeline.engine.waiting import release_ready

                ready = sorted(waiters)
                waiters.clear()
                release_ready(ready)  # a card it moves may add its own dependents
            if freed:
                from pipeline.engine.admission import wake_deferred

                wake_deferred(freed)
            # Cards touched while settling (none today) would wait for the next transaction.
            _touched.set(None)
            _known.set(None)
            _waiters.set(None)
            settle(pending, cards=[c for c in pending.values() if c is not None], known=known)
    finally:
        _waiters.reset(waiters_token)
        _freed.reset(freed_token)
        _known.reset(known_token)
        _touched.reset(token)
