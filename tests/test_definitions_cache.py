"""A worker keeps the recipes and stages it read while the definitions' count stays the same:
every kind of edit must move the count (so the next run reads the edit), and a run must never
execute what was there before an edit that committed before its claim."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from features.models import Stage
from pipeline import engine, executor
from pipeline.engine import definitions
from pipeline.models import DefinitionsVersion, Run
from skills.models import Gate, RecipeStep, Skill, StageRecipe
from tests.conftest import Story
from tests.engine_helpers import card, stage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the count's triggers are PostgreSQL's"
)


def count() -> int:
    return DefinitionsVersion.objects.get(pk=1).value


def first_stage_run(story: Story, no_enqueue: Any, title: str) -> Run:
    """Launch a card and execute its first stage run (architecture) in this process."""
    feature = card(story.workspace, title)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        executor.execute_run(run.pk, "worker/1")
    run.refresh_from_db()
    return run


EDITS = {
    "a step's settings (queryset update)": lambda ws: RecipeStep.objects.filter(
        recipe__stage__workspace=ws
    ).update(params={"edited": True}),
    "a gate added (bulk insert)": lambda ws: Gate.objects.bulk_create(
        [Gate(recipe=StageRecipe.objects.filter(stage__workspace=ws).first(), name="x", type="")]
    ),
    "a gate removed (queryset delete)": lambda ws: Gate.objects.filter(
        recipe__stage__workspace=ws
    ).delete(),
    "a skill's trust (queryset update)": lambda ws: Skill.objects.update(trust="community"),
    "a recipe saved": lambda ws: StageRecipe.objects.filter(stage__workspace=ws)[0].save(),
    "a stage renamed": lambda ws: Stage.objects.filter(workspace=ws).update(name="Renamed"),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_every_kind_of_edit_moves_the_count(story: Story, edit: str) -> None:
    before = count()
    EDITS[edit](story.workspace)
    assert count() > before


def test_a_run_claimed_after_a_gate_was_added_checks_it(story: Story, no_enqueue: Any) -> None:
    assert first_stage_run(story, no_enqueue, "Warm").status == Run.Status.SUCCEEDED
    recipe = StageRecipe.objects.get(stage=stage(story.workspace, "architecture"))
    # The bulk path sends no signal: only the trigger can tell the worker.
    Gate.objects.bulk_create(
        [
            Gate(
                recipe=recipe,
                name="Needs a rollback plan",
                type=Gate.Type.CONTENT_CHECK,
                config={"file": "architecture.md", "required_sections": ["Rollback plan"]},
                failure_message="No rollback plan",
            )
        ]
    )
    run = first_stage_run(story, no_enqueue, "After the edit")
    assert run.status == Run.Status.FAILED
    assert "No rollback plan" in run.error_message


def test_a_worker_reads_the_recipe_once_per_count(story: Story, no_enqueue: Any) -> None:
    stage_id = stage(story.workspace, "architecture").pk
    definitions.forget()
    with pytest.MonkeyPatch.context() as patch:
        reads: list[int] = []
        original = definitions._kept_or_read

        def counting(kind: str, key: int, version: int | None, read: Any) -> Any:
            def counted() -> Any:
                reads.append(key)
                return read()

            return original(kind, key, version, counted)

        patch.setattr(definitions, "_kept_or_read", counting)
        for n in range(3):
            first_stage_run(story, no_enqueue, f"Card {n}")
        assert reads.count(stage_id) == 1
        RecipeStep.objects.filter(recipe__stage_id=stage_id).update(params={"edited": True})
        first_stage_run(story, no_enqueue, "After the edit")
        assert reads.count(stage_id) == 2


@pytest.mark.django_db(transaction=True)
def test_the_count_survives_a_flush() -> None:
    """Emptying the database (what a transactional test does after itself) keeps the row, so
    workers go on caching; the count only grows."""
    from django.core.management import call_command

    before = count()
    call_command("flush", interactive=False, verbosity=0)
    assert count() >= before
