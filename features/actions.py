"""Writes to workspaces and cards. Views, the CLI and the engine call these, never .save()."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.utils import timezone
from django.utils.text import slugify

from features import events
from features.models import Feature, Membership, Stage, StageTransition, Workspace
from features.stage_templates import (
    DEFAULT_KIND_STAGES,
    DEFAULT_STOP_STAGE,
    TEMPLATES,
    WORK_BOARD,
)


class FeatureError(Exception):
    """A request about a card that cannot be carried out, with a message a person can act on."""


class StaleVersion(FeatureError):
    """Someone saved the card since this edit started (optimistic lock)."""


def do_create_workspace(
    *, name: str, template: str, owner: User, slug: str | None = None
) -> Workspace:
    if template not in TEMPLATES:
        raise FeatureError(f"Unknown template {template!r}; choose one of {', '.join(TEMPLATES)}.")
    from skills.defaults import install_default_recipes

    slug = slug or slugify(name)[:60]
    if not slug:
        raise FeatureError("A workspace needs a name with letters or digits.")
    if Workspace.objects.filter(slug=slug).exists():
        raise FeatureError(f"A workspace with the address {slug!r} exists; choose another name.")
    with transaction.atomic():
        workspace = Workspace.objects.create(
            name=name,
            slug=slug,
            template=template,
            default_provider=settings.RUNWAY_DEFAULT_PROVIDER,
            kind_stages={k: list(v) for k, v in DEFAULT_KIND_STAGES.get(template, {}).items()},
        )
        stages = [
            Stage(
                workspace=workspace,
                board=Stage.Board.FEATURE,
                position=i,
                key=s.key,
                name=s.name,
                is_live=s.is_live,
                is_done=s.is_done,
                is_delivery=s.is_delivery,
            )
            for i, s in enumerate(TEMPLATES[template])
        ] + [
            Stage(
                workspace=workspace,
                board=Stage.Board.WORK,
                position=i,
                key=s.key,
                name=s.name,
                is_live=s.is_live,
                is_done=s.is_done,
                is_delivery=s.is_delivery,
            )
            for i, s in enumerate(WORK_BOARD)
        ]
        Stage.objects.bulk_create(stages)
        workspace.stop_stage = Stage.objects.get(
            workspace=workspace, key=DEFAULT_STOP_STAGE[template]
        )
        workspace.save(update_fields=["stop_stage"])
        Membership.objects.create(workspace=workspace, user=owner, role=Membership.Role.OWNER)
        install_default_recipes(workspace)
    return workspace


def do_add_member(workspace: Workspace, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    return membership


def default_stage_for(workspace: Workspace, kind: str) -> Stage:
    # Tasks and subtasks are worked on the work board; every other kind, stories included,
    # has a pipeline of its own (a story's generates its subtasks) on the feature board.
    board = Stage.Board.WORK if kind == Feature.Kind.TASK else Stage.Board.FEATURE
    stage = workspace.stages.filter(board=board).order_by("position").first()
    if stage is None:
        raise FeatureError(f"Workspace {workspace.slug} has no stages on the {board} board.")
    return stage


def _next_position(stage: Stage) -> int:
    top = Feature.objects.filter(stage=stage).aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


TITLE_MAX = 200
DESCRIPTION_MAX = 20_000
NOTE_MAX = 500


def check_text(value: str, what: str, max_length: int) -> str:
    """Text a person typed, as every door must accept it: at most `max_length` characters, no
    NUL (PostgreSQL refuses it) and nothing that cannot be stored as UTF-8. Raises FeatureError."""
    if len(value) > max_length:
        raise FeatureError(f"{what} is at most {max_length:,} characters (got {len(value):,}).")
    if "\x00" in value:
        raise FeatureError(f"{what} must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FeatureError(f"{what} must be valid Unicode text.") from None
    return value


def do_create_feature(
    workspace: Workspace,
    *,
    title: str,
    user: User | None,
    description: str = "",
    kind: str = Feature.Kind.FEATURE,
    parent: Feature | None = None,
    stage: Stage | None = None,
    note: str = "Created",
) -> Feature:
    title = title.strip()
    if not title:
        raise FeatureError("A feature needs a title.")
    if len(title) > TITLE_MAX:
        raise FeatureError("Titles are at most 200 characters.")
    check_text(title, "The title", TITLE_MAX)
    check_text(description, "The description", DESCRIPTION_MAX)
    check_text(note, "The note", NOTE_MAX)
    if kind not in Feature.Kind.values:
        raise FeatureError(
            f"Unknown kind {kind!r}; choose one of {', '.join(Feature.Kind.values)}."
        )
    if parent is not None and parent.workspace_id != workspace.pk:
        raise FeatureError("The parent card belongs to another workspace.")
    if stage is not None and stage.workspace_id != workspace.pk:
        raise FeatureError("The stage belongs to another workspace.")
    stage = stage or default_stage_for(workspace, kind)
    with transaction.atomic():
        feature = Feature.objects.create(
            workspace=workspace,
            title=title,
            description=description,
            kind=kind,
            parent=parent,
            stage=stage,
            position=_next_position(stage),
            created_by=user,
        )
        StageTransition.objects.create(feature=feature, to_stage=stage, actor_user=user, note=note)
        events.card_changed_on_commit(feature, created=True)
    return feature


def insert_into_column(feature: Feature, stage: Stage, position: int | None) -> None:
    """Place the card at index `position` of `stage` (None: at the end).

    The column is renumbered 0..n-1 in one UPDATE, touching only the cards whose number
    changes, so a drop between two cards lands exactly there however sparse the old numbers.
    """
    if position is None:
        feature.position = _next_position(stage)
        feature.stage = stage
        return
    order = list(
        Feature.objects.filter(stage=stage)
        .exclude(pk=feature.pk)
        .order_by("position", "id")
        .values_list("pk", "position")
    )
    position = max(0, min(position, len(order)))
    order.insert(position, (feature.pk, -1))
    changed = {pk: i for i, (pk, old) in enumerate(order) if old != i and pk != feature.pk}
    if changed:
        Feature.objects.filter(pk__in=changed).update(
            position=Case(*(When(pk=pk, then=Value(i)) for pk, i in changed.items()))
        )
    feature.position = position
    feature.stage = stage


# A dependency is finished once its card reaches a done (or live) stage.
FINISHED = Q(stage__is_done=True) | Q(stage__is_live=True)


def blocking_dependencies(feature: Feature) -> list[int]:
    """The ids of the cards this one waits for that are not finished yet."""
    unfinished = Feature.objects.filter(dependents__feature=feature).exclude(FINISHED)
    return sorted(unfinished.values_list("pk", flat=True))


def do_move_feature(
    feature: Feature,
    stage: Stage,
    *,
    user: User | None,
    position: int | None = None,
    note: str = "",
) -> Feature:
    """Put a card at index `position` of `stage` (None: the end), with an audit row.

    The card domain's half of a move: whether the card may leave its stage (an active run),
    what entering a stage starts and the status it and its dependents show then are the
    pipeline's business (``pipeline.engine.move_feature``, the writer people's moves go
    through). Raises FeatureError for a stage of another workspace, or a note over 500
    characters or with NUL.
    """
    check_text(note, "The note", NOTE_MAX)
    if stage.workspace_id != feature.workspace_id:
        raise FeatureError("That stage belongs to another workspace.")
    with transaction.atomic():
        locked = Feature.objects.select_for_update(of=("self",)).get(pk=feature.pk)
        from_stage_id = locked.stage_id
        insert_into_column(locked, stage, position)
        locked.version = F("version") + 1
        locked.save(update_fields=["stage", "position", "version", "updated_at"])
        locked.refresh_from_db()
        if from_stage_id != stage.pk:
            StageTransition.objects.create(
                feature=locked,
                from_stage_id=from_stage_id,
                to_stage=stage,
                actor_user=user,
                note=note,
            )
        events.card_changed_on_commit(locked, previous_stage_id=from_stage_id)
    return locked


def do_update_feature(
    feature: Feature,
    *,
    expected_version: int,
    title: str | None = None,
    description: str | None = None,
) -> Feature:
    """Edit text fields; a stale version (someone else saved first) is refused, not overwritten."""
    changes: dict[str, object] = {}
    if title is not None:
        title = title.strip()
        if not title or len(title) > TITLE_MAX:
            raise FeatureError("A title is 1 to 200 characters.")
        changes["title"] = check_text(title, "The title", TITLE_MAX)
    if description is not None:
        changes["description"] = check_text(description, "The description", DESCRIPTION_MAX)
    updated = Feature.objects.filter(pk=feature.pk, version=expected_version).update(
        version=F("version") + 1, updated_at=timezone.now(), **changes
    )
    if updated == 0:
        raise StaleVersion("Someone else changed this card; reload to see their version.")
    feature.refresh_from_db()
    events.card_changed_on_commit(feature)
    return feature


def subtree_ids(feature: Feature) -> list[int]:
    """The card and every card below it (children, grandchildren, ...), one query per level.
    Cycles cannot form through `parent`, but a seen-set keeps a damaged tree finite."""
    seen = [feature.pk]
    level = [feature.pk]
    while level:
        level = [
            pk
            for pk in Feature.objects.filter(parent_id__in=level).values_list("pk", flat=True)
            if pk not in seen
        ]
        seen.extend(level)
    return seen


def do_set_archived(feature_ids: list[int], *, archived: bool) -> int:
    """Archive (or bring back) these cards: hidden from the boards, runs and history kept.
    Returns how many cards changed. The caller checks access and active runs
    (pipeline.engine.archiving), and holds the cards' locks."""
    cards = Feature.objects.filter(pk__in=feature_ids)
    if archived:
        changed = cards.filter(archived_at__isnull=True).update(
            archived_at=timezone.now(), version=F("version") + 1
        )
    else:
        changed = cards.filter(archived_at__isnull=False).update(
            archived_at=None, version=F("version") + 1
        )
    return changed
