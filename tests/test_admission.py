"""A workspace's limits hold: at most max_concurrent_runs running, nothing past the budget."""

from __future__ import annotations

from decimal import Decimal

from features.models import Workspace
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card, chain


def test_max_concurrent_runs_limits_running_runs(story, no_enqueue):
    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=2)
    cards = [card(story.workspace, f"Card {i}") for i in range(3)]
    with no_enqueue():
        runs = [engine.launch_pipeline(c, story.owner).run for c in cards]
        claimed = [engine.claim_run(r.pk, f"w/{i}") for i, r in enumerate(runs)]
    assert [c is not None for c in claimed] == [True, True, False]
    assert Run.objects.filter(workspace=story.workspace, status="running").count() == 2
    waiting = Run.objects.get(pk=runs[2].pk)
    assert (waiting.status, waiting.error_kind) == ("queued", "deferred")
    assert waiting.next_attempt_at is not None
    cards[2].refresh_from_db()
    assert cards[2].status_note.startswith("Waiting for a free slot: 2 runs are running")


def test_a_reached_budget_holds_new_runs_until_it_is_raised(story, eager, no_enqueue):
    spent = card(story.workspace, "Spent")
    with eager():
        engine.launch_pipeline(spent, story.owner)
    Run.objects.filter(feature=spent).update(cost_usd=Decimal("6"))
    Workspace.objects.filter(pk=story.workspace.pk).update(monthly_budget_usd=Decimal("10"))

    waiting = card(story.workspace, "Waiting")
    with no_enqueue():
        run = engine.launch_pipeline(waiting, story.owner).run
        assert engine.claim_run(run.pk, "w/1") is None
    waiting.refresh_from_db()
    assert waiting.status_note == (
        "Budget reached: $12.00 of $10.00 spent this month; raise the budget to resume"
    )

    Workspace.objects.filter(pk=story.workspace.pk).update(monthly_budget_usd=Decimal("50"))
    story.workspace.refresh_from_db()
    with eager():
        assert engine.resume_deferred(story.workspace) == 1
    assert [r.status for r in chain(waiting)] == ["succeeded", "succeeded"]


def test_a_freed_slot_wakes_a_run_that_waits_for_one_at_once(story, no_enqueue):
    from functools import partial

    from pipeline.engine.runs import enqueue

    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=1)
    first, second = card(story.workspace, "First"), card(story.workspace, "Second")
    with no_enqueue():
        running = engine.launch_pipeline(first, story.owner).run
        waiting = engine.launch_pipeline(second, story.owner).run
        assert engine.claim_run(running.pk, "w/1") is not None
        assert engine.claim_run(waiting.pk, "w/2") is None
    waiting.refresh_from_db()
    assert waiting.error_kind == "deferred"
    assert waiting.next_attempt_at is not None  # the retry is only the safety net

    with no_enqueue() as callbacks:
        engine.fail_run(running.pk, 1, "The provider refused")
    waiting.refresh_from_db()
    assert waiting.next_attempt_at is None
    woken = [
        c
        for c in callbacks
        if isinstance(c, partial) and c.func is enqueue and c.args == (waiting.pk,)
    ]
    assert len(woken) == 1
    with no_enqueue():
        assert engine.claim_run(waiting.pk, "w/2") is not None


def test_a_run_waiting_for_the_budget_is_not_woken_by_a_freed_slot(story, no_enqueue):
    Workspace.objects.filter(pk=story.workspace.pk).update(monthly_budget_usd=Decimal("1"))
    spent = card(story.workspace, "Spent")
    with no_enqueue():
        running = engine.launch_pipeline(spent, story.owner).run
        assert engine.claim_run(running.pk, "w/1") is not None
    Run.objects.filter(pk=running.pk).update(cost_usd=Decimal("2"))
    with no_enqueue():
        waiting = engine.launch_pipeline(card(story.workspace, "Waiting"), story.owner).run
        assert engine.claim_run(waiting.pk, "w/2") is None
        engine.fail_run(running.pk, 1, "The provider refused")
    waiting.refresh_from_db()
    assert waiting.error_message.startswith("Budget reached")
    assert waiting.next_attempt_at is not None
