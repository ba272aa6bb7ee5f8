"""What a stage run executes, read once per process per version of the definitions.

A stage's recipe (its steps with their skills, its gates) and a workspace's stages change
rarely, yet every stage run read them: three queries of the hot path. On PostgreSQL a trigger
counts every change to those tables (``DefinitionsVersion``) and the claim and the fence return
the count with the run, in the statements they make anyway; a worker process keeps what it read
under that count and reads again once the count moves. The count changes in the editing
transaction, so a run claimed after an edit committed sees the new count and the new recipe,
as it did when it read the recipe itself. Without a count (SQLite, or a database whose row was
flushed) nothing is kept.

Kept objects are shared by the runs of this process: the engine only reads them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connection

from features.models import Stage
from pipeline.engine.planning import board_stages
from pipeline.models import DefinitionsVersion
from skills.models import Gate, RecipeStep, StageRecipe

# Enough for every stage of a busy worker's workspaces; the oldest entry goes first.
KEEP = 512

T = TypeVar("T")

_lock = threading.Lock()
_kept: OrderedDict[tuple[str, int, int], Any] = OrderedDict()


def version_sql() -> str:
    """A scalar subquery for a RETURNING list or a SELECT: the definitions' count (PostgreSQL;
    empty elsewhere, where nothing is kept)."""
    if connection.vendor != "postgresql":
        return ""
    table = connection.ops.quote_name(DefinitionsVersion._meta.db_table)
    return f"(SELECT value FROM {table} WHERE id = 1) AS definitions_version"  # noqa: S608


def _kept_or_read(kind: str, key: int, version: int | None, read: Callable[[], T]) -> T:
    if version is None:
        return read()
    slot = (kind, key, version)
    with _lock:
        if slot in _kept:
            _kept.move_to_end(slot)
            return _kept[slot]
    value = read()
    with _lock:
        _kept[slot] = value
        while len(_kept) > KEEP:
            _kept.popitem(last=False)
    return value


def recipe_of(
    stage_id: int, version: int | None
) -> tuple[list[RecipeStep], StageRecipe | None, list[Gate]]:
    """The stage's steps (with skill, recipe and stage), its recipe and its gates, in order;
    two queries unless this process read them under `version` already."""

    def read() -> tuple[list[RecipeStep], StageRecipe | None, list[Gate]]:
        steps = list(
            RecipeStep.objects.filter(recipe__stage_id=stage_id)
            .select_related("skill", "recipe", "recipe__stage")
            .order_by("order")
        )
        recipe = (
            steps[0].recipe
            if steps
            else StageRecipe.objects.select_related("stage").filter(stage_id=stage_id).first()
        )
        gates = list(recipe.gates.all()) if recipe is not None else []
        return steps, recipe, gates

    return _kept_or_read("recipe", stage_id, version, read)


def stages_of(workspace_id: int, version: int | None) -> list[Stage]:
    """Every stage of the workspace with its recipe and counts (planning.board_stages); one
    query unless this process read them under `version` already."""
    return _kept_or_read("stages", workspace_id, version, lambda: board_stages(workspace_id, None))


def forget() -> None:
    """Drop everything kept (tests that compare reads with and without the cache)."""
    with _lock:
        _kept.clear()
