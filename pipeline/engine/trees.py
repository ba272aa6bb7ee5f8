"""Batches and trees: many cards' pipelines started together, as ordinary durable runs.

* **Generate subtasks for all stories** (or a selection) of an epic: every chosen story's
  pipeline (its kind's path: acceptance criteria, then subtasks) starts at once, as queued runs
  of one batch. The workspace's run limit admits a few at a time, provider limits apply, and a
  crash or a timeout is recovered like any run's (takeover, rescue, dispatch sweeps). A story
  that has subtasks already is left out, so none gets a second set.
* **Launch the whole tree** of an epic: its stories' pipelines, then their subtasks', in
  dependency order. Every card with work to do gets a *waiting* run of the batch; the engine
  releases each once what it waits for is done (``pipeline.engine.waiting``): a story after
  the stories it depends on, a subtask after its story and its own dependencies. If the epic
  has no stories yet its own pipeline runs first, and the stories it generates join the batch.

A batch is a label over run rows (``Run.batch``), not a second engine: its state is read from
its runs. One Stop cancels every active run of it, one Retry starts again every card whose
last run in it failed, stopped or was rejected, and the last run to end marks it finished and
sends its toast ("24 subtasks added to 6 stories"), once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from features import events
from features.models import Feature
from pipeline.engine import audit_trail, transitions
from pipeline.engine.card_state import engine_transaction, touch, watch_waiting
from pipeline.engine.cards import dependents_of
from pipeline.engine.errors import AlreadyRunning, EngineError, NothingToRun
from pipeline.engine.generation import QUESTIONS_KEY, child_kind
from pipeline.engine.launching import start_card
from pipeline.engine.locks import lock_feature
from pipeline.engine.runs import revoke
from pipeline.models import Batch, Generation, Run, RunLog
from pipeline.runlog import append_log

Status = Run.Status
Kind = Feature.Kind


@dataclass(frozen=True)
class Started:
    """A batch that was started: its runs, and the cards left out with the reason."""

    batch: Batch
    runs: list[Run]
    skipped: list[tuple[Feature, str]] = field(default_factory=list)


# --- What a tree is ------------------------------------------------------------------------------


def stories_of(epic: Feature) -> QuerySet[Feature]:
    """The epic's stories that its latest lists still have (or that people added)."""
    return (
        Feature.objects.filter(parent=epic, kind=Kind.STORY, source_removed_at__isnull=True)
        .select_related("workspace", "stage")
        .order_by("source_index", "id")
    )


def subtasks_of(stories: list[int]) -> QuerySet[Feature]:
    """The stories' subtasks (a questions card opened by a failed gate is not one)."""
    return (
        Feature.objects.filter(
            parent_id__in=stories, kind=Kind.TASK, source_removed_at__isnull=True
        )
        .exclude(source_key=QUESTIONS_KEY)
        .select_related("workspace", "stage")
        .order_by("source_index", "id")
    )


def _require_epic(feature: Feature, what: str) -> None:
    if feature.kind != Kind.EPIC:
        kind = Kind(feature.kind).label.lower()
        raise EngineError(f"{what} starts from an epic; “{feature.title}” is a {kind}.")


def open_batch(root: Feature) -> Batch | None:
    """The root's batch that still has work in flight, if any."""
    return (
        Batch.objects.filter(
            root=root, finished_at__isnull=True, runs__status__in=Run.ACTIVE_STATUSES
        )
        .order_by("-created_at", "-id")
        .first()
    )


# --- Starting ---------------------------------------------------------------------------------


def generate_subtasks(
    epic: Feature, user: User | None, *, story_ids: list[int] | None = None
) -> Started:
    """Generate the subtasks of all of the epic's stories (or of `story_ids`, some of them) as
    one batch of queued runs, in one transaction.

    Stories that already have subtasks, are running, or have nothing to run are left out
    (``Started.skipped`` says why). Raises EngineError for a card that is not an epic or ids
    that are not its stories, NothingToRun when no story is left; nothing is written then.
    """
    _require_epic(epic, "Generating subtasks")
    with engine_transaction():
        epic = lock_feature(epic.pk)
        stories = list(stories_of(epic))
        if story_ids is not None:
            known = {s.pk for s in stories}
            unknown = [pk for pk in dict.fromkeys(story_ids) if pk not in known]
            if unknown:
                names = ", ".join(f"#{pk}" for pk in unknown)
                raise EngineError(f"Not stories of “{epic.title}”: {names}.")
            chosen = set(story_ids)
            stories = [s for s in stories if s.pk in chosen]
        if not stories:
            raise NothingToRun(
                f"“{epic.title}” has no stories yet: launch it to write them, or add some."
            )
        batch = Batch.objects.create(
            workspace_id=epic.workspace_id, kind=Batch.Kind.SUBTASKS, root=epic, created_by=user
        )
        planned = set(subtasks_of([s.pk for s in stories]).values_list("parent_id", flat=True))
        runs: list[Run] = []
        skipped: list[tuple[Feature, str]] = []
        for story in sorted(stories, key=lambda s: s.pk):  # one lock order
            if story.pk in planned:
                skipped.append((story, "already has subtasks"))
                continue
            try:
                launched = start_card(lock_feature(story.pk), user, batch_id=batch.pk)
            except EngineError as exc:
                skipped.append((story, str(exc)))
                continue
            runs.append(launched.run)
        if not runs:
            raise NothingToRun(_nothing_left("Nothing to generate", skipped))
        _audit_started(user, epic, batch, runs, "generate_subtasks")
    return Started(batch, runs, skipped)


def launch_tree(epic: Feature, user: User | None) -> Started:
    """Launch the epic's whole tree: its stories' pipelines, then their subtasks', in
    dependency order, as one batch of waiting runs released as their turn comes.

    With no stories yet, the epic's own pipeline runs first and the stories it generates join
    the batch. Raises EngineError for a card that is not an epic, AlreadyRunning when the tree
    is running already, NothingToRun when no card of it has work to do.
    """
    _require_epic(epic, "A whole-tree launch")
    with engine_transaction():
        epic = lock_feature(epic.pk)
        running = open_batch(epic)
        if running is not None:
            raise AlreadyRunning(
                f"The tree of “{epic.title}” is running already (batch #{running.pk}); "
                "stop it or wait for it to end."
            )
        batch = Batch.objects.create(
            workspace_id=epic.workspace_id, kind=Batch.Kind.TREE, root=epic, created_by=user
        )
        stories = list(stories_of(epic))
        if not stories:
            runs = [start_card(epic, user, batch_id=batch.pk).run]
            _audit_started(user, epic, batch, runs, "launch_tree")
            return Started(batch, runs)
        cards = stories + list(subtasks_of([s.pk for s in stories]))
        runs, skipped = _plan_cards(cards, user, batch)
        if not runs:
            raise NothingToRun(
                _nothing_left(f"Nothing to run in the tree of “{epic.title}”", skipped)
            )
        _audit_started(user, epic, batch, runs, "launch_tree")
    return Started(batch, runs, skipped)


def _audit_started(
    user: User | None, epic: Feature, batch: Batch, runs: list[Run], how: str
) -> None:
    audit_trail.by_person(
        user,
        epic.workspace_id,
        "run.launch",
        audit_trail.card(epic),
        {"batch": batch.pk, "how": how, "runs": [r.pk for r in runs]},
    )


def _plan_cards(
    cards: list[Feature], user: User | None, batch: Batch, *, resume: bool = False
) -> tuple[list[Run], list[tuple[Feature, str]]]:
    """A waiting run of the batch for each card with work to do; the engine releases them in
    order at the end of the transaction."""
    runs: list[Run] = []
    skipped: list[tuple[Feature, str]] = []
    for card in sorted(cards, key=lambda c: c.pk):  # one lock order
        try:
            launched = start_card(
                lock_feature(card.pk),
                user,
                trigger=Run.Trigger.PERSON if user is not None else Run.Trigger.PIPELINE,
                batch_id=batch.pk,
                wait=True,
                resume_stopped=resume,
            )
        except EngineError as exc:
            skipped.append((card, str(exc)))
            continue
        runs.append(launched.run)
    watch_waiting(*[r.feature_id for r in runs])
    return runs, skipped


def _nothing_left(what: str, skipped: list[tuple[Feature, str]]) -> str:
    reasons = Counter(reason for _, reason in skipped)
    if not reasons:
        return f"{what}."
    said = "; ".join(
        f"“{next(c.title for c, r in skipped if r == reason)}”"
        + (f" and {count - 1} more" if count > 1 else "")
        + f": {reason}"
        for reason, count in reasons.most_common(3)
    )
    return f"{what}: {said}"


# --- Stop and Retry ------------------------------------------------------------------------------


def stop_batch(batch: Batch, user: User | None) -> int:
    """Stop every run of the batch that has not ended (waiting ones too) and every result of
    it waiting for a decision. Returns how many runs were stopped. Raises EngineError when
    nothing of it is in progress."""
    who = user.get_username() if user is not None else "the system"
    with engine_transaction():
        cards = sorted(
            set(
                Run.objects.filter(batch=batch, status__in=Run.ACTIVE_STATUSES).values_list(
                    "feature_id", flat=True
                )
            )
            | set(
                Run.objects.filter(
                    batch=batch, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
                ).values_list("feature_id", flat=True)
            )
        )
        if not cards:
            raise EngineError(f"Nothing to stop: batch #{batch.pk} has no runs in progress.")
        note = f"Batch #{batch.pk} stopped by {who}"
        stopped = 0
        queued: list[int] = []
        for feature_id in cards:
            lock_feature(feature_id)
            active = transitions.cancel(feature_id, message=f"Stopped by {who}.", note=note)
            stopped += len(active) + transitions.reject_waiting(feature_id, note=note)
            for pk, status in active:
                append_log(pk, f"Cancelled: {note}", level=RunLog.Level.WARNING)
                if status == Status.QUEUED:
                    queued.append(pk)
        now = timezone.now()
        Batch.objects.filter(pk=batch.pk).update(
            stopped_at=now, finished_at=now, summary=summarize(batch.pk)
        )
        if queued:
            transaction.on_commit(partial(revoke, queued))
        events.toast_on_commit(
            batch.workspace_id, f"{note}: {stopped} run(s) stopped", level="warning"
        )
        audit_trail.by_person(
            user,
            batch.workspace_id,
            "run.stop",
            audit_trail.batch_target(batch),
            {"stopped": stopped, "cards": cards},
        )
    batch.refresh_from_db()
    return stopped


def retry_batch(batch: Batch, user: User | None) -> list[Run]:
    """Start again every card of the batch whose last run in it failed, was stopped or was
    rejected: from the stage where it ended (after its succeeded steps), in the batch's order.
    Returns the new runs. Raises EngineError when there is nothing to retry."""
    with engine_transaction():
        ended = _unsuccessful_cards(batch)
        if not ended:
            raise NothingToRun(
                f"Nothing to retry: no run of batch #{batch.pk} failed or was stopped."
            )
        cards = list(Feature.objects.filter(pk__in=ended).select_related("workspace", "stage"))
        if batch.kind == Batch.Kind.TREE:
            runs, skipped = _plan_cards(cards, user, batch, resume=True)
        else:
            runs, skipped = [], []
            for card in sorted(cards, key=lambda c: c.pk):
                try:
                    launched = start_card(
                        lock_feature(card.pk), user, batch_id=batch.pk, resume_stopped=True
                    )
                except EngineError as exc:
                    skipped.append((card, str(exc)))
                    continue
                runs.append(launched.run)
        if not runs:
            raise NothingToRun(_nothing_left("Nothing to retry", skipped))
        Batch.objects.filter(pk=batch.pk).update(finished_at=None, stopped_at=None, summary={})
        audit_trail.by_person(
            user,
            batch.workspace_id,
            "run.retry",
            audit_trail.batch_target(batch),
            {"runs": [r.pk for r in runs], "skipped": [c.pk for c, _ in skipped]},
        )
    batch.refresh_from_db()
    return runs


def _unsuccessful_cards(batch: Batch) -> list[int]:
    """Cards whose last run in the batch failed, was stopped or rejected, and that have no
    active run now."""
    latest: dict[int, tuple[str, str]] = {}
    for feature_id, status, decision in (
        Run.objects.filter(batch=batch)
        .order_by("feature_id", "-created_at", "-id")
        .values_list("feature_id", "status", "decision")
    ):
        latest.setdefault(feature_id, (status, decision))
    ended = [
        pk
        for pk, (status, decision) in latest.items()
        if status in (Status.FAILED, Status.CANCELLED)
        or (status == Status.SUCCEEDED and decision == Run.Decision.REJECTED)
    ]
    busy = set(
        Run.objects.filter(feature_id__in=ended, status__in=Run.ACTIVE_STATUSES).values_list(
            "feature_id", flat=True
        )
    )
    return [pk for pk in ended if pk not in busy]


# --- When a batch run ends ---------------------------------------------------------------------


def run_ended(run_id: int) -> None:
    """A run ended (succeeded, failed, stopped or decided): if it belongs to a batch, start
    what its result lets go on and finish the batch when nothing of it is left.

    In a tree, the cards its list just generated get waiting runs of the batch. The cards
    that depend on its card, and its children waiting in the batch, are looked at again: they
    are released if this was what they waited for, and otherwise their notes say why not
    ("Blocked by “Checkout” (failed)"). Call inside the engine transaction that ended it.
    """
    row = (
        Run.objects.filter(pk=run_id)
        .values("batch_id", "batch__kind", "feature_id", "status", "decision")
        .first()
    )
    if row is None or row["batch_id"] is None:
        return
    batch_id, feature_id = row["batch_id"], row["feature_id"]
    stood = row["status"] == Status.SUCCEEDED and row["decision"] in (
        Run.Decision.AUTO,
        Run.Decision.ACCEPTED,
    )
    if row["batch__kind"] == Batch.Kind.TREE and stood:
        generation = Generation.objects.filter(run_id=run_id).first()
        if generation is not None and generation.added:
            batch = Batch.objects.get(pk=batch_id)
            children = list(
                Feature.objects.filter(pk__in=generation.added).select_related("workspace", "stage")
            )
            _plan_cards(children, None, batch)
    waiting_children = list(
        Run.objects.filter(
            batch_id=batch_id, feature__parent_id=feature_id, status=Status.WAITING
        ).values_list("feature_id", flat=True)
    )
    followers = [*dependents_of(feature_id), *waiting_children]
    touch(*followers)
    watch_waiting(*followers)
    finish_if_done(batch_id)


def finish_if_done(batch_id: int) -> bool:
    """Mark the batch finished and send its final toast, once, when none of its runs is in
    progress and no result of it waits for a decision. Returns whether it finished now.

    The batch row is locked first, always after the card's: two of its last runs ending at the
    same moment each see the other still running, so the one that looks second must wait for
    the first to commit, and then sees it ended.
    """
    if Batch.objects.select_for_update().filter(pk=batch_id).values_list("pk").first() is None:
        return False
    in_progress = Run.objects.filter(batch_id=batch_id, status__in=Run.ACTIVE_STATUSES).exists()
    if (
        in_progress
        or Run.objects.filter(
            batch_id=batch_id, status=Status.SUCCEEDED, decision=Run.Decision.PENDING
        ).exists()
    ):
        return False
    summary = summarize(batch_id)
    finished = Batch.objects.filter(pk=batch_id, finished_at__isnull=True).update(
        finished_at=timezone.now(), summary=summary
    )
    if not finished:
        return False
    batch = Batch.objects.select_related("root").get(pk=batch_id)
    events.toast_on_commit(
        batch.workspace_id,
        final_message(batch),
        level="warning" if summary.get("failed") else "success",
        feature_id=batch.root_id,
        batch_id=batch.pk,
    )
    return True


# --- What a batch made -------------------------------------------------------------------------


def summarize(batch_id: int) -> dict[str, object]:
    """{"added": {child kind: count}, "parents": {child kind: parent count}, "failed": n,
    "failed_titles": [...]} from the generations its runs applied and its cards' last runs."""
    added: Counter[str] = Counter()
    parents: dict[str, set[int]] = defaultdict(set)
    for parent_id, parent_kind, cards in Generation.objects.filter(
        run__batch_id=batch_id
    ).values_list("parent_id", "parent__kind", "added"):
        if cards:
            kind = _child_label(parent_kind)
            added[kind] += len(cards)
            parents[kind].add(parent_id)
    latest: dict[int, tuple[str, str, str]] = {}
    for feature_id, title, status, decision in (
        Run.objects.filter(batch_id=batch_id)
        .order_by("feature_id", "-created_at", "-id")
        .values_list("feature_id", "feature__title", "status", "decision")
    ):
        latest.setdefault(feature_id, (title, status, decision))
    failed = [
        title
        for title, status, decision in latest.values()
        if status in (Status.FAILED, Status.CANCELLED) or decision == Run.Decision.REJECTED
    ]
    return {
        "added": dict(added),
        "parents": {kind: len(ids) for kind, ids in parents.items()},
        "cards": len(latest),
        "failed": len(failed),
        "failed_titles": failed[:5],
    }


def _child_label(parent_kind: str) -> str:
    kind = child_kind(parent_kind)
    if kind == Kind.TASK and parent_kind == Kind.STORY:
        return "subtask"
    return str(Kind(kind).label).lower()


_PARENT_OF = {"story": "epic", "subtask": "story", "task": "card"}


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def final_message(batch: Batch) -> str:
    """ "24 subtasks added to 6 stories" (what the batch made), and what failed if anything."""
    summary = batch.summary or {}
    added: dict[str, int] = summary.get("added", {})
    parents: dict[str, int] = summary.get("parents", {})
    parts = []
    for kind in ("story", "subtask", "task"):
        if added.get(kind):
            parent = _PARENT_OF[kind]
            if kind == "story" and batch.root is not None and parents.get(kind) == 1:
                target = f"“{batch.root.title}”"
            else:
                target = plural(parents.get(kind, 0), parent)
            parts.append(f"{plural(added[kind], kind)} added to {target}")
    said = "; ".join(parts) or "Nothing new was added"
    failed = int(summary.get("failed", 0) or 0)
    if batch.stopped_at is not None:
        said += " before it was stopped"
    elif failed:
        said += f"; {plural(failed, 'card')} failed or stopped"
    return said


# --- Progress ----------------------------------------------------------------------------------


@dataclass
class CardProgress:
    pk: int
    title: str
    kind: str
    stage: str
    state: str  # running, queued, waiting, decision, done, failed, stopped
    note: str = ""
    step: str = ""


@dataclass
class Progress:
    """How far a batch is: what the progress panel, the API and the CLI show."""

    batch: Batch
    cards: list[CardProgress]
    now: datetime

    @property
    def total(self) -> int:
        return len(self.cards)

    def _count(self, *states: str) -> int:
        return sum(1 for c in self.cards if c.state in states)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def failed(self) -> int:
        return self._count("failed", "stopped")

    @property
    def running(self) -> list[CardProgress]:
        return [c for c in self.cards if c.state == "running"]

    @property
    def in_progress(self) -> int:
        return self._count("running")

    @property
    def pending(self) -> int:
        return self._count("queued", "waiting", "decision")

    @property
    def done_percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def running_percent(self) -> int:
        if not self.total:
            return 0
        return min(100 - self.done_percent, round(100 * self.in_progress / self.total))

    @property
    def finished(self) -> bool:
        return self.batch.finished_at is not None

    @property
    def elapsed_seconds(self) -> int:
        end = self.batch.finished_at or self.now
        return max(0, int((end - self.batch.created_at).total_seconds()))

    @property
    def elapsed_label(self) -> str:
        """ "1:05", "1:02:03": as the page's ticking counter writes it."""
        minutes, seconds = divmod(self.elapsed_seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"

    @property
    def title(self) -> str:
        root = f" of “{self.batch.root.title}”" if self.batch.root is not None else ""
        if self.batch.kind == Batch.Kind.TREE:
            return f"Whole tree{root}"
        return f"Subtasks for {plural(self.total, 'story')}{root}"

    @property
    def failures(self) -> list[CardProgress]:
        return [c for c in self.cards if c.state in ("failed", "stopped")]

    @property
    def message(self) -> str:
        return final_message(self.batch) if self.finished else ""

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.batch.pk,
            "kind": self.batch.kind,
            "root": self.batch.root_id,
            "created_at": self.batch.created_at,
            "finished_at": self.batch.finished_at,
            "stopped_at": self.batch.stopped_at,
            "elapsed_seconds": self.elapsed_seconds,
            "total": self.total,
            "done": self.done,
            "in_progress": self.in_progress,
            "pending": self.pending,
            "failed": self.failed,
            "message": self.message,
            "summary": self.batch.summary,
            "cards": [
                {"id": c.pk, **{k: v for k, v in c.__dict__.items() if k != "pk"}}
                for c in self.cards
            ],
        }


def progress(batch: Batch) -> Progress:
    """Each card of the batch with the state of its last run in it (two queries)."""
    runs = (
        Run.objects.filter(batch=batch)
        .select_related("feature", "stage")
        .order_by("feature_id", "-created_at", "-id")
    )
    latest: dict[int, Run] = {}
    for run in runs:
        latest.setdefault(run.feature_id, run)
    cards = [_card_progress(run) for run in latest.values()]
    order = {"running": 0, "failed": 1, "stopped": 2, "decision": 3, "queued": 4, "waiting": 5}
    cards.sort(key=lambda c: (order.get(c.state, 9), c.pk))
    return Progress(batch=batch, cards=cards, now=timezone.now())


def _card_progress(run: Run) -> CardProgress:
    feature = run.feature
    state = {
        Status.RUNNING: "running",
        Status.QUEUED: "queued",
        Status.AWAITING_APPROVAL: "decision",
        Status.WAITING: "waiting",
        Status.FAILED: "failed",
        Status.CANCELLED: "stopped",
    }.get(Status(run.status), "done")
    if run.status == Status.SUCCEEDED and run.decision == Run.Decision.PENDING:
        state = "decision"
    elif run.status == Status.SUCCEEDED and run.decision == Run.Decision.REJECTED:
        state = "failed"
    step = f"step {run.step_index + 1} of {run.step_total}" if run.step_total else ""
    return CardProgress(
        pk=feature.pk,
        title=feature.title,
        kind=feature.kind,
        stage=run.stage.name,
        state=state,
        note=feature.status_note,
        step=step if state == "running" else "",
    )


def latest_batch(root: Feature) -> Batch | None:
    return (
        Batch.objects.filter(root=root)
        .select_related("root")
        .order_by("-created_at", "-id")
        .first()
    )
