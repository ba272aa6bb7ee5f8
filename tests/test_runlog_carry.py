"""A log flush may carry one more write in its statement (the completion's outcome): both land,
numbered and counted, and a flush with nothing to carry it leaves the write to its caller."""

from __future__ import annotations

import pytest
from django.db import connection

from pipeline import engine
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log, buffering, flush_buffered
from tests.engine_helpers import card

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="data-modifying WITH is PostgreSQL's"
)


def _claimed(story, no_enqueue) -> Run:
    with no_enqueue():
        run = engine.launch_pipeline(card(story.workspace, "Checkout"), story.owner).run
        claimed = engine.claim_run(run.pk, "worker/1")
    assert claimed is not None
    return claimed


def _rename(run_id: int, note: str) -> tuple[str, list[object]]:
    table = connection.ops.quote_name(Run._meta.db_table)
    return f"UPDATE {table} SET card_note = %s WHERE id = %s", [note, run_id]  # noqa: S608


def test_the_lines_and_the_carried_write_land_in_one_statement(story, no_enqueue):
    run = _claimed(story, no_enqueue)
    append_log(run.pk, "written before")  # not buffered: its own INSERT, seq 1
    with buffering(run.pk, run.attempt):
        append_log(run.pk, "first")
        append_log(run.pk, "second")
        carried = flush_buffered(run.pk, along=_rename(run.pk, "carried"))
    assert carried == 1
    assert Run.objects.get(pk=run.pk).card_note == "carried"
    lines = list(RunLog.objects.filter(run=run).order_by("seq").values_list("seq", "message"))
    assert lines[-2:] == [(lines[-3][0] + 1, "first"), (lines[-3][0] + 2, "second")]


def test_a_carried_write_that_matches_nothing_counts_zero(story, no_enqueue):
    run = _claimed(story, no_enqueue)
    with buffering(run.pk, run.attempt):
        append_log(run.pk, "line")
        assert flush_buffered(run.pk, along=_rename(run.pk + 1000, "nobody")) == 0
    assert RunLog.objects.filter(run=run, message="line").exists()


def test_with_nothing_buffered_the_write_is_left_to_the_caller(story, no_enqueue):
    run = _claimed(story, no_enqueue)
    with buffering(run.pk, run.attempt):
        assert flush_buffered(run.pk, along=_rename(run.pk, "not carried")) is None
    assert flush_buffered(run.pk, along=_rename(run.pk, "no buffer")) is None
    assert Run.objects.get(pk=run.pk).card_note != "not carried"
