"""Read models of the tree (epics → stories → subtasks) for the Stories and Subtasks pages, the
epic's card page, the API and the CLI: a constant number of queries, plus one per batch shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from features.models import Dependency, Feature, Workspace
from pipeline.engine.generation import QUESTIONS_KEY
from pipeline.engine.trees import Progress, progress
from pipeline.models import Batch

Kind = Feature.Kind
CardStatus = Feature.Status

# Where a card is in its work, as the KPI cards and the status filter count it.
STATES: dict[str, str] = {
    "todo": "To do",
    "in_progress": "In progress",
    "blocked": "Blocked",
    "failed": "Failed",
    "done": "Done",
}
KINDS: dict[str, str] = {"story": "Stories", "subtask": "Subtasks"}


def state_of(card: Feature) -> str:
    """to do / in progress / blocked / failed / done, from the card's derived status and stage:
    a card with a pipeline running, or in a delivery stage it has not finished, is in progress.
    """
    status = card.status
    if status == CardStatus.DONE or card.stage.is_done or card.stage.is_live:
        return "done"
    if status == CardStatus.BLOCKED:
        return "blocked"
    if status == CardStatus.FAILED:
        return "failed"
    if status in (CardStatus.QUEUED, CardStatus.RUNNING, CardStatus.AWAITING_APPROVAL):
        return "in_progress"
    return "in_progress" if card.stage.delivers else "todo"


@dataclass
class Counts:
    epics: int = 0
    stories: int = 0
    subtasks: int = 0
    todo: int = 0
    in_progress: int = 0
    blocked: int = 0
    failed: int = 0
    done: int = 0

    def add(self, state: str) -> None:
        setattr(self, state, getattr(self, state) + 1)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Item:
    """A story or a subtask as the tree views show it."""

    card: Feature
    state: str
    depends_on: list[tuple[int, str]] = field(default_factory=list)
    visible: bool = True

    @property
    def pk(self) -> int:
        return self.card.pk

    @property
    def state_label(self) -> str:
        return STATES[self.state]

    def as_dict(self) -> dict[str, Any]:
        card = self.card
        return {
            "id": card.pk,
            "title": card.title,
            "kind": card.kind,
            "stage": card.stage.key,
            "status": card.status,
            "status_note": card.status_note,
            "state": self.state,
            "parent": card.parent_id,
            "description": card.description,
            "depends_on": [{"id": pk, "title": title} for pk, title in self.depends_on],
        }


@dataclass
class StoryGroup:
    story: Item
    subtasks: list[Item] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(1 for s in self.subtasks if s.state == "done")

    @property
    def shown(self) -> list[Item]:
        return [s for s in self.subtasks if s.visible]

    @property
    def visible(self) -> bool:
        return self.story.visible or bool(self.shown)


@dataclass
class EpicGroup:
    epic: Feature | None  # None: stories with no epic
    stories: list[StoryGroup] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    batch: Progress | None = None

    @property
    def shown(self) -> list[StoryGroup]:
        return [s for s in self.stories if s.visible]

    @property
    def dom_id(self) -> str:
        return f"epic-{self.epic.pk}" if self.epic is not None else "epic-none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "epic": None
            if self.epic is None
            else {"id": self.epic.pk, "title": self.epic.title, "stage": self.epic.stage.key},
            "counts": self.counts.as_dict(),
            "batch": self.batch.as_dict() if self.batch is not None else None,
            "stories": [
                {**g.story.as_dict(), "subtasks": [s.as_dict() for s in g.shown]}
                for g in self.shown
            ],
        }


@dataclass
class Tree:
    groups: list[EpicGroup]
    counts: Counts
    status: str = ""
    kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.as_dict(),
            "filters": {"status": self.status or None, "kind": self.kind or None},
            "epics": [g.as_dict() for g in self.groups],
        }


def _cards(workspace: Workspace, epic: Feature | None) -> tuple[list[Feature], list[Feature]]:
    stories: QuerySet[Feature] = Feature.objects.filter(
        workspace=workspace, kind=Kind.STORY, source_removed_at__isnull=True
    )
    if epic is not None:
        stories = stories.filter(parent=epic)
    story_list = list(stories.select_related("stage").order_by("parent_id", "source_index", "id"))
    subtasks = (
        Feature.objects.filter(
            parent_id__in=[s.pk for s in story_list],
            kind=Kind.TASK,
            source_removed_at__isnull=True,
        )
        .exclude(source_key=QUESTIONS_KEY)
        .select_related("stage")
        .order_by("parent_id", "source_index", "id")
    )
    return story_list, list(subtasks)


def _dependencies(ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    depends: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for feature_id, pk, title in (
        Dependency.objects.filter(feature_id__in=ids)
        .order_by("depends_on_id")
        .values_list("feature_id", "depends_on_id", "depends_on__title")
    ):
        depends[feature_id].append((pk, title))
    return depends


def build_tree(
    workspace: Workspace, *, epic: Feature | None = None, status: str = "", kind: str = ""
) -> Tree:
    """The workspace's (or one epic's) stories grouped by epic, each with its subtasks, their
    counts and each epic's latest batch. `status` (a key of STATES) and `kind` ("story",
    "subtask") filter what is shown; the counts are always of everything."""
    status = status if status in STATES else ""
    kind = kind if kind in KINDS else ""
    stories, subtasks = _cards(workspace, epic)
    depends = _dependencies([c.pk for c in stories] + [c.pk for c in subtasks])
    epics = (
        [epic]
        if epic is not None
        else list(
            Feature.objects.filter(workspace=workspace, kind=Kind.EPIC)
            .select_related("stage")
            .order_by("position", "id")
        )
    )
    groups: dict[int | None, EpicGroup] = {e.pk: EpicGroup(e) for e in epics}
    by_story: dict[int, tuple[StoryGroup, EpicGroup]] = {}
    totals = Counts(epics=len(epics))
    for card in stories:
        item = Item(card, state_of(card), depends.get(card.pk, []))
        item.visible = kind in ("", "story") and status in ("", item.state)
        group = groups.get(card.parent_id)
        if group is None:
            group = groups.setdefault(None, EpicGroup(None))
        story = StoryGroup(item)
        group.stories.append(story)
        by_story[card.pk] = (story, group)
        for counts in (group.counts, totals):
            counts.stories += 1
            counts.add(item.state)
    for card in subtasks:
        item = Item(card, state_of(card), depends.get(card.pk, []))
        item.visible = kind in ("", "subtask") and status in ("", item.state)
        story, group = by_story[card.parent_id]  # type: ignore[index]
        story.subtasks.append(item)
        for counts in (group.counts, totals):
            counts.subtasks += 1
            counts.add(item.state)
    for group in groups.values():
        group.counts.epics = 1 if group.epic is not None else 0
    _attach_batches([g for g in groups.values() if g.epic is not None])
    ordered = [groups[e.pk] for e in epics] + ([groups[None]] if None in groups else [])
    return Tree(ordered, totals, status, kind)


def _attach_batches(groups: list[EpicGroup]) -> None:
    roots = {g.epic.pk: g for g in groups if g.epic is not None}
    if not roots:
        return
    latest: dict[int, Batch] = {}
    for batch in (
        Batch.objects.filter(root_id__in=roots)
        .select_related("root")
        .order_by("root_id", "-created_at", "-id")
    ):
        assert batch.root_id is not None
        latest.setdefault(batch.root_id, batch)
    for root_id, batch in latest.items():
        roots[root_id].batch = progress(batch)


@dataclass
class SubtaskGroup:
    story: Feature
    epic_title: str
    rows: list[Item]
    total: int
    done: int


def subtask_groups(
    workspace: Workspace, *, status: str = "", epic_id: int | None = None
) -> tuple[list[SubtaskGroup], Counts]:
    """The Subtasks table: every story's subtasks (filtered by `status`, a key of STATES),
    grouped by story; a story none of whose subtasks is shown comes out empty (collapsed)."""
    epic = None
    if epic_id is not None:
        epic = Feature.objects.filter(workspace=workspace, pk=epic_id, kind=Kind.EPIC).first()
    tree = build_tree(workspace, epic=epic, status=status, kind="subtask")
    groups = [
        SubtaskGroup(
            story=story.story.card,
            epic_title=group.epic.title if group.epic is not None else "",
            rows=story.shown,
            total=len(story.subtasks),
            done=story.done,
        )
        for group in tree.groups
        for story in group.stories
    ]
    return groups, tree.counts


def epics_of(workspace: Workspace) -> list[Feature]:
    return list(
        Feature.objects.filter(workspace=workspace, kind=Kind.EPIC).order_by("position", "id")
    )


def batch_for(workspace: Workspace, batch_id: int) -> Batch | None:
    return Batch.objects.filter(Q(workspace=workspace), pk=batch_id).select_related("root").first()
