"""Generated work: a stage's list becomes child cards, keyed by the work so never twice.

A child card is keyed by (parent card, the stage whose list made it, the item's key). Each
time the stage's result stands (gates passed, or a person accepted it) its list is applied as
the next *generation* of that (parent, stage) and reconciled with the cards the earlier ones
made: matching cards are kept (refreshed only if nobody touched them), new items are added,
and cards no longer in the list are marked, never deleted. A rerun, a retry after a failed
gate or moving a finished card back into the stage therefore never makes a second set.

:func:`reconcile` knows nothing of tasks in particular: any kind of parent (a feature's tasks,
an epic's stories, a story's subtasks) and any list of ``{"title", "description",
"depends_on", "key"?}`` items work the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from features import events
from features.models import Dependency, Feature, Stage, StageTransition
from pipeline.engine.card_state import Blocker, CardFacts, card_status, touch
from pipeline.models import Generation, Run

Status = Run.Status
QUESTIONS_KEY = "questions"


@dataclass
class Reconciled:
    """What one generation changed: card ids by outcome, and the children's kind."""

    number: int
    kind: str
    kept: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


def generated_items(run: Run) -> list[dict[str, Any]]:
    """The items of the run's task-list steps, as the model gave them."""
    items: list[dict[str, Any]] = []
    for step in run.result.get("steps", []):
        if step.get("output") == "tasks":
            tasks = (step.get("data") or {}).get("tasks", [])
            items.extend(t for t in tasks if isinstance(t, dict))
    return items


def list_problem(items: list[dict[str, Any]]) -> str | None:
    """Why this list cannot become cards, or None. Today: a dependency cycle, which would
    leave every card on it blocked forever."""
    cycle = _dependency_cycle([_depends(item, i, len(items)) for i, item in enumerate(items)])
    if cycle is None:
        return None
    names = " → ".join(f"“{_title(items[i], i)}”" for i in [*cycle, cycle[0]])
    return (
        f"The generated list has a dependency cycle: {names}. No cards were made; "
        "Rerun with feedback (or Retry) for a list whose items can be done in some order."
    )


def apply_generated_work(
    run: Run, parent: Feature, every_stage: list[Stage] | None = None
) -> Reconciled | None:
    """The run's list (if it made one) becomes the parent's next generation of children.
    None when the run made no list or applied it already. `every_stage`: the workspace's
    stages when the caller read them already (the landing column is among them)."""
    items = generated_items(run)
    if not items:
        return None
    # Whether this run applied its list already (a duplicated accept or completion: never
    # twice), the number the next generation takes and the cards earlier generations made, in
    # one query: the parent's own row carries the two facts (it always exists, so they come
    # back even when there are no such cards), the other rows are those cards.
    rows = list(Feature.objects.raw(*_cards_and_generations(parent, run)))
    facts: Any = next(row for row in rows if row.pk == parent.pk)
    if facts.generation_applied:
        return None
    old = {card.source_key: card for card in rows if card.pk != parent.pk}
    kind = child_kind(parent.kind)
    # Stories land where their own pipeline can run them (their subtasks go to the work board).
    board = Stage.Board.FEATURE if kind == Feature.Kind.STORY else Stage.Board.WORK
    if every_stage is not None:
        landing = min(
            (s for s in every_stage if s.board == board), key=lambda s: s.position, default=None
        )
    else:
        landing = (
            Stage.objects.filter(workspace_id=parent.workspace_id, board=board)
            .order_by("position")
            .first()
        )
    if landing is None:
        return None
    return reconcile(
        parent,
        run.stage,
        items,
        run=run,
        kind=kind,
        landing=landing,
        number=(facts.generation_top or 0) + 1,
        old=old,
    )


def _cards_and_generations(parent: Feature, run: Run) -> tuple[str, list[Any]]:
    """The parent's row and the cards earlier generations of the run's stage made (as
    :func:`_made_by`), each with `generation_top` (the highest generation number so far, or
    NULL) and `generation_applied` (whether this run's generation exists). Written out, not
    built from querysets: every completion of a listing stage sends it, and the queryset that
    said the same cost more to build and compile than to run."""
    q = connection.ops.quote_name
    cards, generations = q(Feature._meta.db_table), q(Generation._meta.db_table)
    # Names come from the models' meta; every value is a parameter.
    sql = (
        f"SELECT card.*, "  # noqa: S608
        f"(SELECT MAX(g.number) FROM {generations} AS g "
        f"WHERE g.parent_id = %s AND g.stage_id = %s) AS generation_top, "
        f"EXISTS (SELECT 1 FROM {generations} AS g "
        f"WHERE g.parent_id = %s AND g.stage_id = %s AND g.run_id = %s) AS generation_applied "
        f"FROM {cards} AS card WHERE card.id = %s OR (card.parent_id = %s "
        f"AND card.source_stage_id = %s AND card.source_key NOT IN ('', %s))"
    )
    stage_id = run.stage_id
    params = [parent.pk, stage_id, parent.pk, stage_id, run.pk, parent.pk, parent.pk, stage_id]
    return sql, [*params, QUESTIONS_KEY]


def _made_by(parent: Feature, stage_id: int) -> Q:
    """The parent's cards that a generation of `stage_id` made (its questions card aside)."""
    return Q(parent=parent, source_stage_id=stage_id) & ~Q(source_key__in=["", QUESTIONS_KEY])


def reconcile(
    parent: Feature,
    stage: Stage,
    items: list[dict[str, Any]],
    *,
    run: Run | None,
    kind: str,
    landing: Stage,
    number: int | None = None,
    old: Mapping[str, Feature] | None = None,
) -> Reconciled:
    """Apply `items` as the next generation of `parent`'s children from `stage`.

    Call under the parent card's lock. Cards are matched by key (the item's "key", else its
    title, case and spacing ignored). A matched card a person has not touched (never edited
    or moved, still in `landing`) takes the new title and description; one a person moved,
    edited or finished stays as it is. Unmatched items become new cards at the end of
    `landing`; cards whose key is gone are marked ``source_removed_at`` (kept, not deleted).
    Dependencies between the generation's cards are replaced by the list's. `number`: the
    generation's number when the caller counted them already; `old`: the cards earlier
    generations made, by key, when the caller read them already.
    """
    now = timezone.now()
    if number is None:
        previous = Generation.objects.filter(parent=parent, stage=stage).aggregate(
            top=Max("number")
        )
        number = (previous["top"] or 0) + 1
    result = Reconciled(number=number, kind=kind)
    keys = _keys(items)
    if old is None:
        old = {card.source_key: card for card in Feature.objects.filter(_made_by(parent, stage.pk))}
    # New cards go to the end of `landing`, numbered inside their INSERT (no read first).
    top = Coalesce(
        Subquery(
            Feature.objects.filter(stage=landing)
            .order_by()
            .values("stage")
            .annotate(top=Max("position"))
            .values("top")
        ),
        -1,
    )
    next_position = 1
    cards: list[Feature] = []
    new: list[Feature] = []
    for index, (key, item) in enumerate(zip(keys, items, strict=True)):
        title = _title(item, index, kind)[:200]
        description = str(item.get("description") or "")[:20_000]
        card = old.get(key)
        if card is None:
            card = Feature(
                workspace_id=parent.workspace_id,
                title=title,
                description=description,
                kind=kind,
                stage=landing,
                position=top + next_position,
                parent=parent,
                source_stage=stage,
                source_key=key,
                source_run=run,
                source_index=index,
            )
            next_position += 1
            new.append(card)
        else:
            changes: dict[str, Any] = {"source_index": index}
            untouched = card.version == 1 and card.stage_id == landing.pk
            if card.source_removed_at is not None:
                changes["source_removed_at"] = None
            if untouched and (card.title, card.description) != (title, description):
                changes.update(title=title, description=description)
            if set(changes) - {"source_index"}:
                result.updated.append(card.pk)
            else:
                result.kept.append(card.pk)
            Feature.objects.filter(pk=card.pk).update(updated_at=now, **changes)
            events.card_changed_on_commit(card)
        cards.append(card)
    if not old:
        _born_settled(new, items, landing)
        if new and connection.vendor == "postgresql":
            _insert_first_generation(new, items, parent, stage, landing, run, result.number, now)
            result.added = [c.pk for c in new]
            for card in new:
                events.card_changed_on_commit(card, created=True)
            return result
    Feature.objects.bulk_create(new)
    if any(c.pk is None for c in new):  # backends without RETURNING
        ids = dict(
            Feature.objects.filter(parent=parent, source_stage=stage).values_list(
                "source_key", "pk"
            )
        )
        for card in new:
            card.pk = ids[card.source_key]
    result.added = [c.pk for c in new]
    gone = [c for key, c in old.items() if key not in set(keys)]
    result.removed = [c.pk for c in gone if c.source_removed_at is None]
    Feature.objects.filter(pk__in=result.removed).update(source_removed_at=now, updated_at=now)
    # The list's dependencies replace those between this (parent, stage)'s cards.
    family = [c.pk for c in cards] + [c.pk for c in gone]
    if old:  # cards made just now have no dependencies to replace
        Dependency.objects.filter(feature_id__in=family, depends_on_id__in=family).delete()
    Dependency.objects.bulk_create(
        Dependency(feature=cards[i], depends_on=cards[d])
        for i, item in enumerate(items)
        for d in dict.fromkeys(_depends(item, i, len(items)))
    )
    StageTransition.objects.bulk_create(
        StageTransition(
            feature=c,
            to_stage=landing,
            actor_run=run,
            note=f"Generated by run #{run.pk}" if run is not None else "Generated",
        )
        for c in new
    )
    for card in new:
        events.card_changed_on_commit(card, created=True)
    for pk in result.removed:
        events.card_changed_on_commit(Feature(pk=pk, workspace_id=parent.workspace_id))
    Generation.objects.create(
        parent=parent,
        stage=stage,
        number=result.number,
        run=run,
        kept=result.kept,
        added=result.added,
        updated=result.updated,
        removed=result.removed,
        created_at=now,
    )
    if old:
        touch(*family)
    return result


def _insert_first_generation(
    new: list[Feature],
    items: list[dict[str, Any]],
    parent: Feature,
    stage: Stage,
    landing: Stage,
    run: Run | None,
    number: int,
    now: datetime,
) -> None:
    """PostgreSQL: a generation made only of new cards in one statement: the cards
    (:func:`_cards_insert`), their dependencies, their audit rows and the generation row, as
    data-modifying WITH clauses over the inserted rows. Sets each card's pk.

    The cards' rows are matched to the list by ``source_index`` (their place in the list), not
    by the order RETURNING gives them in."""
    cards_sql, cards_params = _cards_insert(new, landing)
    q = connection.ops.quote_name
    pairs = [
        (i, d) for i, item in enumerate(items) for d in dict.fromkeys(_depends(item, i, len(items)))
    ]
    # Table names come from the models' meta; every value is a parameter.
    sql = f"""
        WITH new AS ({cards_sql}),
        dependencies AS (
            INSERT INTO {q(Dependency._meta.db_table)} (feature_id, depends_on_id)
            SELECT card.id, earlier.id
            FROM unnest(%s::integer[], %s::integer[]) AS pair(card_index, earlier_index)
            JOIN new AS card ON card.source_index = pair.card_index
            JOIN new AS earlier ON earlier.source_index = pair.earlier_index
        ),
        audit AS (
            INSERT INTO {q(StageTransition._meta.db_table)}
                (feature_id, from_stage_id, to_stage_id, actor_user_id, actor_run_id, note,
                 created_at)
            SELECT new.id, NULL, %s, NULL, %s, %s, %s FROM new
        ),
        generation AS (
            INSERT INTO {q(Generation._meta.db_table)}
                (parent_id, stage_id, number, run_id, kept, added, updated, removed, created_at)
            SELECT %s, %s, %s, %s, '[]'::jsonb,
                   COALESCE((SELECT jsonb_agg(new.id ORDER BY new.source_index) FROM new),
                            '[]'::jsonb),
                   '[]'::jsonb, '[]'::jsonb, %s
        )
        SELECT id, source_index FROM new"""  # noqa: S608
    params: list[Any] = [
        *cards_params,
        [i for i, _ in pairs],
        [d for _, d in pairs],
        landing.pk,
        run.pk if run is not None else None,
        f"Generated by run #{run.pk}" if run is not None else "Generated",
        now,
        parent.pk,
        stage.pk,
        number,
        run.pk if run is not None else None,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = dict((index, pk) for pk, index in cursor.fetchall())
    for card in new:
        card.pk = ids[card.source_index]
        card._state.adding, card._state.db = False, connection.alias  # as bulk_create leaves it


def _cards_insert(new: list[Feature], landing: Stage) -> tuple[str, list[Any]]:
    """The new cards' INSERT … RETURNING id, source_index: one array per column, each value
    prepared by its field as bulk_create prepares it (auto_now stamps included), and positions
    numbered after `landing`'s highest inside the statement, in list order."""
    q = connection.ops.quote_name
    fields = [f for f in Feature._meta.concrete_fields if not f.primary_key]
    columns, selected, arrays = [], [], []
    for model_field in fields:
        column = q(str(model_field.column))
        columns.append(column)
        if model_field.attname == "position":
            selected.append("top.n + item.ord")
            continue
        selected.append(f"item.{column}")
        values = [
            model_field.get_db_prep_save(model_field.pre_save(card, add=True), connection)
            for card in new
        ]
        arrays.append((column, model_field.db_type(connection), values))
    table = q(Feature._meta.db_table)
    unnest = ", ".join(f"%s::{db_type}[]" for _, db_type, _ in arrays)
    names = ", ".join(column for column, _, _ in arrays)
    # Names and types come from the model's meta; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(selected)} "
        f"FROM (SELECT COALESCE(MAX(position), -1) AS n FROM {table} WHERE stage_id = %s) AS top, "
        f"unnest({unnest}) WITH ORDINALITY AS item({names}, ord) ORDER BY item.ord "
        f"RETURNING id, source_index"
    )
    return sql, [landing.pk, *(values for _, _, values in arrays)]


def _born_settled(new: list[Feature], items: list[dict[str, Any]], landing: Stage) -> None:
    """Give a list made of new cards only the status settling would derive for them, before
    they are inserted: none has a run, all are in `landing`, and each waits only for cards of
    the list (named in id order, which is the list's order). Spares reading them back."""
    finished = bool(landing.is_done or landing.is_live)
    for index, card in enumerate(new):
        waits_for = sorted(set(_depends(items[index], index, len(items))))
        blockers = tuple(Blocker(0, new[d].title) for d in waits_for)
        facts = CardFacts(
            stage_id=landing.pk, stage_finished=finished, latest=None, blockers=blockers
        )
        card.status, card.status_note = card_status(facts)


def open_questions(run: Run, feature: Feature, why: str) -> Feature:
    """The card's questions card for this stage (one, reused): a gate failed and people should
    answer what the run could not."""
    text = f"The {run.stage.name} gates failed for run #{run.pk}:\n\n{why}"
    question = Feature.objects.filter(
        parent=feature, source_stage=run.stage, source_key=QUESTIONS_KEY
    ).first()
    if question is not None:
        description = f"{question.description}\n\n{text}".strip()[:20_000]
        Feature.objects.filter(pk=question.pk).update(
            description=description, source_run=run, updated_at=timezone.now()
        )
        events.card_changed_on_commit(question)
        return question
    question = Feature.objects.create(
        workspace_id=feature.workspace_id,
        title=f"Questions: {feature.title}"[:200],
        description=text,
        kind=Feature.Kind.TASK,
        stage=Stage.objects.filter(workspace_id=feature.workspace_id, board=Stage.Board.WORK)
        .order_by("position")
        .first()
        or feature.stage,
        parent=feature,
        source_stage=run.stage,
        source_key=QUESTIONS_KEY,
        source_run=run,
    )
    StageTransition.objects.create(
        feature=question, to_stage=question.stage, actor_run=run, note=f"Opened by run #{run.pk}"
    )
    events.card_changed_on_commit(question, created=True)
    return question


def child_kind(parent_kind: str) -> str:
    """What a card's generated work is: an epic splits into stories, anything else into tasks
    (a story's are its subtasks)."""
    return Feature.Kind.STORY if parent_kind == Feature.Kind.EPIC else Feature.Kind.TASK


def item_key(item: dict[str, Any], index: int) -> str:
    """An item's identity across generations: its "key" if the list gives one, else its title
    with case and spacing ignored."""
    explicit = item.get("key")
    if isinstance(explicit, (str, int)) and not isinstance(explicit, bool) and str(explicit):
        return f"key:{explicit}"[:200]
    return "title:" + " ".join(_title(item, index).casefold().split())[:200]


def _keys(items: list[dict[str, Any]]) -> list[str]:
    """Keys for every item, unique within the list: a repeated title gets "#2", "#3"…, skipping
    any number another item's own key already is ("API", "API", "API #2" are "api", "api #3",
    "api #2"), so two items never share a card."""
    own = [item_key(item, index) for index, item in enumerate(items)]
    reserved, taken = set(own), set[str]()
    last: dict[str, int] = {}
    keys = []
    for key in own:
        if key in taken:
            number = last.get(key, 1) + 1
            while f"{key} #{number}" in reserved or f"{key} #{number}" in taken:
                number += 1
            last[key] = number
            key = f"{key} #{number}"
        taken.add(key)
        keys.append(key)
    return keys


def _title(item: dict[str, Any], index: int, kind: str = Feature.Kind.TASK) -> str:
    return str(item.get("title") or f"{Feature.Kind(kind).label} {index + 1}").strip()


def _depends(item: dict[str, Any], index: int, count: int) -> list[int]:
    """A task's depends_on as the model gave it (indexes into the list), the valid ones."""
    value = item.get("depends_on")
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        return []
    return [
        d
        for d in value
        if isinstance(d, int) and not isinstance(d, bool) and 0 <= d < count and d != index
    ]


def _dependency_cycle(edges: list[list[int]]) -> list[int] | None:
    """One cycle of the graph (node i depends on edges[i]) as a list of nodes, or None."""
    state = [0] * len(edges)  # 0 unseen, 1 on the current path, 2 done
    path: list[int] = []

    def visit(node: int) -> list[int] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges[node]:
            if state[nxt] == 1:
                return path[path.index(nxt) :]
            if state[nxt] == 0 and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in range(len(edges)):
        if state[start] == 0 and (found := visit(start)) is not None:
            return found
    return None
