"""Read models for pages: a constant number of queries however many cards there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from features.models import Artifact, Feature, HealthCheckResult, Stage, Workspace
from pipeline.board_filters import BoardFilters
from pipeline.models import WORKER_STALE_AFTER, Run, WorkerHeartbeat

# A column first shows this many cards; "Show more" loads the rest a page at a time. Rendering
# the cards is what a big board's time goes to, and nobody reads card 200 of a column.
COLUMN_PAGE = 10
MORE_PAGE = 100
# Swimlanes shown when the work board is grouped by parent; more are reached by filtering.
MAX_LANES = 30
# Parents offered in the filter menu (the newest); any other is reachable by link (?parent=).
MAX_PARENT_OPTIONS = 100


@dataclass
class Column:
    stage: Stage
    cards: list[Feature] = field(default_factory=list)
    # Whether Launch makes sense for a card in this column (the stage or the next is automated).
    launchable: bool = False
    # How many cards the column holds (under the filters), shown or not; None: all are shown.
    total: int | None = None
    # A swimlane's column: its element ids carry the lane so they stay unique on the page.
    lane: str = ""
    # How many of its cards the page holds after a "Show more" (None: those in `cards`).
    shown: int | None = None

    @property
    def count(self) -> int:
        return len(self.cards) if self.total is None else self.total

    @property
    def hidden(self) -> int:
        """Cards of this column not on the page yet ("Show more")."""
        return max(self.count - self.next_offset, 0)

    @property
    def next_offset(self) -> int:
        return len(self.cards) if self.shown is None else self.shown

    @property
    def dom_id(self) -> str:
        prefix = f"lane-{self.lane}-" if self.lane else ""
        return f"{prefix}column-{self.stage.pk}"


@dataclass
class Lane:
    """The work board's row for one parent card (None: cards without a parent)."""

    key: str
    parent_id: int | None
    parent_title: str
    columns: list[Column]

    @property
    def count(self) -> int:
        return sum(c.count for c in self.columns)


def annotated_cards(workspace: Workspace, *, archived: bool = False) -> QuerySet[Feature]:
    latest_run = Run.objects.filter(feature=OuterRef("pk")).order_by("-created_at", "-id")
    latest_health = HealthCheckResult.objects.filter(feature=OuterRef("pk")).order_by(
        "-checked_at", "-id"
    )
    return (
        Feature.objects.filter(workspace=workspace, archived_at__isnull=not archived)
        .select_related("stage")
        # The card names where it came from; the description is never shown on the board.
        .defer("description")
        .annotate(
            parent_title=F("parent__title"),
            child_count=Count("children", distinct=True),
            open_incidents=Count(
                "children",
                filter=Q(children__kind=Feature.Kind.INCIDENT)
                & ~Q(children__status=Feature.Status.DONE),
                distinct=True,
            ),
            last_run_id=Subquery(latest_run.values("id")[:1]),
            # The health badge: the latest check's outcome (None: never checked).
            health_ok=Subquery(latest_health.values("ok")[:1]),
            health_detail=Subquery(latest_health.values("detail")[:1]),
            # What the card's runs cost, summed in a subquery (no join to multiply counts).
            cost_usd=Subquery(
                Run.objects.filter(feature=OuterRef("pk"))
                .values("feature")
                .annotate(total=Sum("cost_usd"))
                .values("total")[:1]
            ),
        )
        .order_by("position", "id")
    )


@dataclass(frozen=True)
class BlockerLink:
    url: str
    title: str
    outcome: str


def attach_blockers(cards: list[Feature], cards_root: str) -> None:
    """Blocked cards name what they wait for, by title with links (one query, or none)."""
    from pipeline.engine.card_state import blockers_of

    blocked = [c.pk for c in cards if c.status == Feature.Status.BLOCKED]
    found = blockers_of(blocked) if blocked else {}
    for card in cards:
        card.blockers = [  # type: ignore[attr-defined]
            BlockerLink(f"{cards_root}{b.pk}/", b.title, b.outcome) for b in found.get(card.pk, [])
        ]


def attach_last_runs(cards: list[Feature]) -> None:
    """One query for every card's latest run: what the card shows and which buttons make sense."""
    ids = [c.last_run_id for c in cards if getattr(c, "last_run_id", None)]  # type: ignore[attr-defined]
    runs = Run.objects.select_related("stage").in_bulk(ids) if ids else {}
    for card in cards:
        card.last_run = runs.get(getattr(card, "last_run_id", None))  # type: ignore[attr-defined]


def workspace_stages(workspace: Workspace) -> list[Stage]:
    """Both boards' stages with their recipes and step counts, in one query."""
    return list(
        Stage.objects.filter(workspace=workspace)
        .select_related("recipe")
        .annotate(step_count=Count("recipe__steps"))
        .order_by("board", "position")
    )


def launchable_stage_ids(stages: list[Stage]) -> set[int]:
    """Stages where Launch has work to do: the stage or the one after it has an automated recipe."""
    from pipeline.engine import runnable_recipe

    launchable: set[int] = set()
    for index, stage in enumerate(stages):
        following = stages[index + 1] if index + 1 < len(stages) else None
        if runnable_recipe(stage) is not None or (
            following is not None
            and following.board == stage.board
            and runnable_recipe(following) is not None
        ):
            launchable.add(stage.pk)
    return launchable


def _columns(stages: list[Stage], cards: list[Feature]) -> dict[int, Column]:
    launchable = launchable_stage_ids(stages)
    columns = {s.pk: Column(s, launchable=s.pk in launchable) for s in stages}
    attach_last_runs(cards)
    menus = move_menus(stages)
    # Built here, not with {% url %} per button: reversing and localising thousands of ids was
    # most of a large board's render time. The card's actions live under its detail URL.
    cards_root = reverse("features:detail", args=[0]).removesuffix("0/")
    attach_blockers(cards, cards_root)
    for card in cards:
        column = columns.get(card.stage_id)
        if column is not None:
            card.ref = str(card.pk)  # type: ignore[attr-defined]
            card.url = f"{cards_root}{card.pk}/"  # type: ignore[attr-defined]
            card.parent_url = f"{cards_root}{card.parent_id}/" if card.parent_id else ""  # type: ignore[attr-defined]
            card.launchable = column.launchable  # type: ignore[attr-defined]
            card.move_options = menus[card.stage_id]  # type: ignore[attr-defined]
            column.cards.append(card)
    return columns


def move_menus(stages: list[Stage]) -> dict[int, SafeString]:
    """Each stage's "Move to" options (its own selected), built once per board rather than
    once per card: a board of 2,000 cards would otherwise render 16,000 option tags."""
    menus: dict[int, SafeString] = {}
    for stage in stages:
        menus[stage.pk] = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (other.pk, mark_safe(" selected") if other.pk == stage.pk else "", other.name)
                for other in stages
                if other.board == stage.board
            ),
        )
    return menus


def columns_for(workspace: Workspace, stage_ids: set[int]) -> list[Column]:
    """Some columns, re-rendered after a change (the consumer's out-of-band updates): each
    with its first cards and its count, like the unfiltered board shows it."""
    stages = workspace_stages(workspace)
    wanted = [s for s in stages if s.pk in stage_ids]
    columns = _limited_columns(
        workspace, stages, live_cards(workspace).filter(stage_id__in=stage_ids)
    )
    return [columns[s.pk] for s in wanted]


def live_cards(workspace: Workspace) -> QuerySet[Feature]:
    """The workspace's cards that the boards show by default (archived ones are not)."""
    return Feature.objects.filter(workspace=workspace, archived_at__isnull=True)


def _ranked_ids(cards: QuerySet[Feature], per_group: int, *partition: Any) -> list[int]:
    """The ids of each group's first `per_group` cards in board order (one query). Fetched on
    their own rather than as a subquery: the expensive annotations then run for the shown cards
    only, and the planner cannot pick a nested loop that re-ranks the board for every card (it
    did, 6 s for 2,000 freshly inserted cards whose statistics it did not have yet)."""
    ranked = cards.annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F(p) if isinstance(p, str) else p for p in partition],
            order_by=[F("position").asc(), F("id").asc()],
        )
    ).filter(rank__lte=per_group)
    return list(ranked.values_list("pk", flat=True))


def _limited_columns(
    workspace: Workspace,
    stages: list[Stage],
    matching: QuerySet[Feature],
    *,
    archived: bool = False,
    per_column: int = COLUMN_PAGE,
) -> dict[int, Column]:
    """Columns holding their first cards of `matching`, with every column's full count: four
    queries (counts, ids, cards, runs) and one for blockers, however many cards match."""
    counts = dict(
        matching.order_by().values("stage_id").annotate(n=Count("pk")).values_list("stage_id", "n")
    )
    shown = list(
        annotated_cards(workspace, archived=archived).filter(
            pk__in=_ranked_ids(matching, per_column, "stage_id")
        )
    )
    columns = _columns(stages, shown)
    for pk, column in columns.items():
        column.total = counts.get(pk, 0)
    return columns


def column_more(
    workspace: Workspace, stage: Stage, filters: BoardFilters, offset: int
) -> tuple[Column, list[Feature]]:
    """Show more: the column's next cards after the first `offset` (under the filters), and the
    column with its count and how many cards the page then holds (for the next offset)."""
    matching = filters.apply(Feature.objects.filter(workspace=workspace)).filter(stage=stage)
    total = matching.count()
    page = list(
        annotated_cards(workspace, archived=filters.archived).filter(
            pk__in=list(
                matching.order_by("position", "id").values_list("pk", flat=True)[
                    offset : offset + MORE_PAGE
                ]
            )
        )
    )
    _columns(workspace_stages(workspace), page)
    return Column(stage, cards=page, total=total, shown=min(offset, total) + len(page)), page


def card_for_render(workspace: Workspace, feature_id: int) -> Feature | None:
    cards = list(annotated_cards(workspace).filter(pk=feature_id))
    if not cards:
        return None
    _columns(workspace_stages(workspace), cards)
    return cards[0]


def worker_alive() -> bool:
    return WorkerHeartbeat.alive().exists()


def lost_cards(workspace: Workspace, limit: int = 50) -> list[Feature]:
    """Cards whose running run's worker went silent (Run.worker_lost), ready to render: nothing
    else tells the board, since a dead worker sends no event."""
    cutoff = timezone.now() - WORKER_STALE_AFTER
    ids = list(
        Run.objects.filter(workspace=workspace, status=Run.Status.RUNNING)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, claimed_at__lt=cutoff))
        .values_list("feature_id", flat=True)[:limit]
    )
    if not ids:
        return []
    cards = list(annotated_cards(workspace).filter(pk__in=ids))
    _columns(workspace_stages(workspace), cards)
    return cards


def board_page(
    workspace: Workspace, filters: BoardFilters | None = None, *, stages: list[Stage] | None = None
) -> dict[str, Any]:
    """Both boards under the filters, each column with its first cards and its count: a
    constant number of queries however many cards there are (bench/run.py measures it).
    Grouped by parent, the work board is one row (lane) per parent card, newest first."""
    filters = filters or BoardFilters()
    stages = stages if stages is not None else workspace_stages(workspace)
    matching = filters.apply(Feature.objects.filter(workspace=workspace))
    grouped = filters.group == "parent"
    if not grouped:
        columns = _limited_columns(workspace, stages, matching, archived=filters.archived)
        lanes = None
    else:
        columns, lanes = _grouped(workspace, stages, matching, archived=filters.archived)
    return {
        "stages": stages,
        "filters": filters,
        "feature_columns": [c for c in columns.values() if c.stage.board == Stage.Board.FEATURE],
        "work_columns": [c for c in columns.values() if c.stage.board == Stage.Board.WORK],
        "lanes": lanes,
        "parent_options": parent_options(workspace, filters.parent),
        "worker_alive": worker_alive(),
    }


def _grouped(
    workspace: Workspace, stages: list[Stage], matching: QuerySet[Feature], *, archived: bool
) -> tuple[dict[int, Column], list[Lane]]:
    """The feature board's columns and the work board's lanes in the same queries as the plain
    board: counts by (stage, parent), the first cards of each feature column and of each lane's
    column (one ranking: a work card's group is its parent too), the cards, runs, blockers."""
    work = [s for s in stages if s.board == Stage.Board.WORK]
    counts: dict[tuple[int, int | None], int] = {
        (stage_id, parent_id): n
        for stage_id, parent_id, n in matching.order_by()
        .values("stage_id", "parent_id")
        .annotate(n=Count("pk"))
        .values_list("stage_id", "parent_id", "n")
    }
    work_ids = {s.pk for s in work}
    lane_keys = sorted(
        {parent for stage_id, parent in counts if stage_id in work_ids},
        key=lambda pk: (pk is None, -(pk or 0)),
    )[:MAX_LANES]
    lane_of_work_card = Case(
        When(stage__board=Stage.Board.WORK, then=F("parent_id")), default=Value(None)
    )
    shown_lanes = Q(stage__board=Stage.Board.FEATURE) | Q(
        Q(parent_id__in=[k for k in lane_keys if k is not None])
        | (Q(parent__isnull=True) if None in lane_keys else Q(pk__in=[]))
    )
    ids = _ranked_ids(matching.filter(shown_lanes), COLUMN_PAGE, "stage_id", lane_of_work_card)
    shown = list(annotated_cards(workspace, archived=archived).filter(pk__in=ids))
    # One pass for runs and blockers; the work board's plain columns are not drawn when grouped.
    columns = _columns(stages, shown)
    for pk, column in columns.items():
        column.total = sum(n for (stage_id, _), n in counts.items() if stage_id == pk)
    lanes = []
    for key in lane_keys:
        lane_key = str(key) if key is not None else "none"
        lane_columns = {
            s.pk: Column(s, lane=lane_key, total=counts.get((s.pk, key), 0)) for s in work
        }
        for card in shown:
            if card.parent_id == key and card.stage_id in lane_columns:
                lane_columns[card.stage_id].cards.append(card)
        first = next((c for col in lane_columns.values() for c in col.cards), None)
        title = getattr(first, "parent_title", "") if first is not None else ""
        lanes.append(Lane(lane_key, key, title, list(lane_columns.values())))
    return columns, lanes


def parent_options(workspace: Workspace, selected: int | None) -> list[tuple[int, str]]:
    """The parent filter's choices: cards that have children, newest first (one query)."""
    rows = list(
        Feature.objects.filter(workspace=workspace, children__isnull=False)
        .distinct()
        .order_by("-pk")
        .values_list("pk", "title")[:MAX_PARENT_OPTIONS]
    )
    if selected is not None and all(pk != selected for pk, _ in rows):
        rows += list(
            Feature.objects.filter(workspace=workspace, pk=selected).values_list("pk", "title")
        )
    return rows


def feature_page(feature: Feature) -> dict[str, Any]:
    runs = list(Run.objects.filter(feature=feature).select_related("stage").order_by("created_at"))
    return {
        "artifacts": list(Artifact.objects.filter(feature=feature).order_by("name", "-version")),
        "runs": runs,
        "cost_total": sum((r.cost_usd for r in runs if r.cost_usd is not None), Decimal(0)),
        "cost_unknown": any(r.cost_usd is None for r in runs),
        "children": card_tree(feature),
        **linked_work(feature),
        "transitions": list(
            feature.transitions.select_related("from_stage", "to_stage", "actor_user")
        ),
    }


def card_tree(feature: Feature) -> list[Feature]:
    """The card's children, each with its own children as `.grandchildren` (two queries):
    an epic's stories and their subtasks, a feature's incidents and tasks."""
    grandchildren = Prefetch(
        "children",
        queryset=Feature.objects.select_related("stage").order_by("kind", "id"),
        to_attr="grandchildren",
    )
    return list(
        feature.children.select_related("stage")
        .prefetch_related(grandchildren)
        .order_by("kind", "id")
    )


def linked_work(feature: Feature) -> dict[str, Any]:
    """What the card waits for and what waits for it, and its health check's recent results."""
    from features.health import describe
    from features.health_commands import operator_commands

    return {
        "depends_on": list(
            Feature.objects.filter(dependents__feature=feature)
            .select_related("stage")
            .order_by("id")
        ),
        "blocks": list(
            Feature.objects.filter(dependencies__depends_on=feature)
            .select_related("stage")
            .order_by("id")
        ),
        "health_results": list(feature.health_results.all()[:20]),
        "health_summary": describe(feature.health_check),
        "health_target": feature.health_check.get("url") or feature.health_check.get("command", ""),
        "health_command_names": sorted(operator_commands()),
        "health_commands_allowed": bool(operator_commands()),
    }
