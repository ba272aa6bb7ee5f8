"""Waiting runs: work that starts by itself once what it waits for has finished.

A run is created ``waiting`` when its card may not start yet, and the engine releases it
(waiting → queued, the card moved into the run's stage if it is not there yet) in the
transaction that finished the last thing it waited for. Two rules decide what holds a waiting
run back (:func:`_holders`):

* **Delivery.** In a delivery stage (building, QA, done…) a run waits until every card its
  card depends on is finished (in a done or live stage). Planning stages never wait for that.
* **A batch's order** (a whole tree). In a planning stage, a run of a batch waits while a card
  it depends on, or its parent in the tree, still has work in flight, or its last run in that
  batch did not succeed (failed, stopped, rejected, or a result waiting for a decision). So a
  tree's stories run in dependency order and each story's subtasks after the story; a failed
  story holds its dependents, which say so by name, until a Retry.

Releases are asked for by :func:`pipeline.engine.card_state.watch_waiting` (a card changed
stage, a batch run ended) and done at the end of the engine transaction; the recovery sweep
looks at waiting runs as well, so a release missed for any reason happens within a sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from features.actions import FINISHED, blocking_dependencies
from features.models import Dependency, Feature, Stage
from pipeline.engine import transitions
from pipeline.engine.card_state import Blocker, engine_transaction, outcome_of
from pipeline.engine.cards import record_move
from pipeline.engine.locks import lock_feature
from pipeline.engine.planning import entry_status, kind_path, plan_from, runnable_recipe
from pipeline.engine.runs import create_run, enqueue
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log

Status = Run.Status


@dataclass(frozen=True)
class WaitingRun:
    run_id: int
    feature_id: int
    parent_id: int | None
    stage_id: int
    delivers: bool  # its stage is a delivery stage
    batch_id: int | None


def waiting_runs(feature_ids: Iterable[int]) -> list[WaitingRun]:
    """The waiting runs of these cards (one query)."""
    rows = Run.objects.filter(feature_id__in=list(feature_ids), status=Status.WAITING).values(
        "pk",
        "feature_id",
        "feature__parent_id",
        "stage_id",
        "stage__is_delivery",
        "stage__is_done",
        "stage__is_live",
        "batch_id",
    )
    return [
        WaitingRun(
            run_id=row["pk"],
            feature_id=row["feature_id"],
            parent_id=row["feature__parent_id"],
            stage_id=row["stage_id"],
            delivers=bool(
                row["stage__is_delivery"] or row["stage__is_done"] or row["stage__is_live"]
            ),
            batch_id=row["batch_id"],
        )
        for row in rows
    ]


def _unsuccessful(status: str, decision: str) -> bool:
    """A batch run that did not (yet) let its card's work count as done."""
    return status in (Status.FAILED, Status.CANCELLED) or (
        status == Status.SUCCEEDED and decision in (Run.Decision.PENDING, Run.Decision.REJECTED)
    )


def _holders(runs: list[WaitingRun]) -> dict[int, list[Blocker]]:
    """For each waiting run, the cards that still hold it back (three or four queries)."""
    feature_ids = {r.feature_id for r in runs}
    depends: dict[int, list[int]] = defaultdict(list)
    for feature_id, depends_on_id in (
        Dependency.objects.filter(feature_id__in=feature_ids)
        .order_by("depends_on_id")
        .values_list("feature_id", "depends_on_id")
    ):
        depends[feature_id].append(depends_on_id)
    parents = {r.parent_id for r in runs if r.batch_id is not None and r.parent_id is not None}
    candidates = {d for ds in depends.values() for d in ds} | parents
    if not candidates:
        return {r.run_id: [] for r in runs}
    latest = Run.objects.filter(feature=OuterRef("pk")).order_by("-created_at", "-id")
    info = {
        row["pk"]: row
        for row in Feature.objects.filter(pk__in=candidates)
        .order_by()
        .annotate(
            finished=Exists(Feature.objects.filter(FINISHED, pk=OuterRef("pk"))),
            active=Exists(
                Run.objects.filter(feature=OuterRef("pk"), status__in=Run.ACTIVE_STATUSES)
            ),
            run_status=Subquery(latest.values("status")[:1]),
            run_decision=Subquery(latest.values("decision")[:1]),
        )
        .values("pk", "title", "finished", "active", "run_status", "run_decision")
    }
    batches = {r.batch_id for r in runs if r.batch_id is not None}
    in_batch: dict[tuple[int, int], tuple[str, str]] = {}
    if batches:
        for feature_id, batch_id, status, decision in (
            Run.objects.filter(batch_id__in=batches, feature_id__in=candidates)
            .order_by("feature_id", "batch_id", "-created_at", "-id")
            .values_list("feature_id", "batch_id", "status", "decision")
        ):
            in_batch.setdefault((feature_id, batch_id), (status, decision))

    def holds(card: int, run: WaitingRun, *, parent: bool) -> bool:
        row = info.get(card)
        if row is None or row["finished"]:
            return False
        if not parent and run.delivers:
            return True  # delivery waits for the card to be finished, whatever it is doing
        if run.batch_id is None:
            return False  # outside a batch, planning never waits
        if row["active"]:
            return True
        last = in_batch.get((card, run.batch_id))
        return last is not None and _unsuccessful(*last)

    def blocker(card: int) -> Blocker:
        row = info[card]
        return Blocker(card, row["title"], outcome_of(row["run_status"], row["run_decision"]))

    result: dict[int, list[Blocker]] = {}
    for run in runs:
        held: list[Blocker] = []
        parent = run.parent_id if run.batch_id is not None else None
        if parent is not None and holds(parent, run, parent=True):
            held.append(blocker(parent))
        held += [blocker(d) for d in depends.get(run.feature_id, []) if holds(d, run, parent=False)]
        result[run.run_id] = held
    return result


def waiting_blockers(feature_ids: Iterable[int]) -> dict[int, list[Blocker]]:
    """What each card's waiting run waits for, by card: what its status note names."""
    runs = waiting_runs(feature_ids)
    holders = _holders(runs) if runs else {}
    return {run.feature_id: holders.get(run.run_id, []) for run in runs}


def release_ready(feature_ids: Iterable[int]) -> list[int]:
    """Release the waiting runs of these cards that nothing holds back any more: each card is
    locked, then looked at, moved into its run's stage if needed, and its run queued (sent
    after commit; a stage that needs a person's Start waits for one). Call inside an engine
    transaction. Returns the released run ids.

    Every card with a waiting run is locked before it is looked at, never skipped on a first
    look: two of its dependencies finishing at once each see the other still running until
    it commits, and the lock makes the second wait for the first and then see it finished.
    """
    candidates = sorted({r.feature_id for r in waiting_runs(feature_ids)})
    released: list[int] = []
    # One lock order (card ids ascending), so releases in two transactions never deadlock.
    for feature_id in candidates:
        feature = lock_feature(feature_id)
        for run in waiting_runs([feature.pk]):  # read under the lock
            if not _holders([run])[run.run_id] and _release(feature, run.run_id):
                released.append(run.run_id)
    return released


def _release(feature: Feature, run_id: int) -> bool:
    run = Run.objects.select_related("stage", "stage__recipe").get(pk=run_id)
    recipe = runnable_recipe(run.stage)
    if recipe is None:
        note = f"{run.stage.name} no longer has an automated recipe: nothing to run"
        if transitions.cancel(feature.pk, message=note + ".", note=note):
            append_log(run.pk, note, level=RunLog.Level.WARNING)
        return False
    if feature.stage_id != run.stage_id:
        record_move(feature, run.stage, run=run, note="What it waited for finished")
    status, note = entry_status(run.stage, recipe)
    if not transitions.release(run.pk, feature_id=feature.pk, status=status, note=note):
        return False
    if status != Status.QUEUED:
        append_log(run.pk, f"What it waited for finished; {note}")
        return True
    append_log(run.pk, "What it waited for finished: queued")
    transaction.on_commit(partial(enqueue, run.pk), robust=True)
    return True


def wait_for_delivery(run: Run, feature: Feature, target: Stage, stages: list[Stage]) -> Run | None:
    """The chain of `run` ended as it moved its card into `target`. If the chain stopped there
    only because the card's dependencies are unfinished (the stage is delivery, and without them
    the pipeline would have gone on), the card gets a waiting run of `target` that starts by
    itself once they are finished. Returns that run, or None."""
    # The card's lock (locks.lock_card_of) already said whether it depends on any card.
    if not target.delivers or not getattr(feature, "has_dependencies", True):
        return None
    path = kind_path(feature.workspace, feature.kind)
    current = next(s for s in stages if s.pk == run.stage_id)
    unblocked = plan_from(feature.workspace, stages, current, path=path)
    if target not in unblocked or not blocking_dependencies(feature):
        return None
    rest = unblocked[unblocked.index(target) + 1 :]
    waiting = create_run(
        feature,
        target,
        pipeline_next=[s.key for s in rest],
        parent=run,
        user=None,
        status=Status.WAITING,
        guard=False,
        trigger=Run.Trigger.PIPELINE,
        batch_id=run.batch_id,
    )
    append_log(waiting.pk, f"{target.name} waits for this card's dependencies to finish")
    return waiting


def release_stale(limit: int = 500) -> int:
    """The sweep's safety net: release waiting runs whose wait is over but whose release was
    missed (say, a dependency finished by an operator's correction). Returns how many."""
    feature_ids = list(
        Run.objects.filter(status=Status.WAITING)
        .order_by("queued_at", "id")
        .values_list("feature_id", flat=True)[:limit]
    )
    if not feature_ids:
        return 0
    with engine_transaction():
        return len(release_ready(feature_ids))


__all__ = [
    "WaitingRun",
    "release_ready",
    "release_stale",
    "wait_for_delivery",
    "waiting_blockers",
    "waiting_runs",
]
