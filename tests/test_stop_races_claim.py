"""Stop racing a claim, on real connections in real threads (PostgreSQL): the card ends stopped.

A claim that finds no free slot defers its run and says so on the card. If a Stop commits while
that claim waits for the card's lock, the claim must see the run cancelled and leave the card
as Stop left it: its status is derived from its runs, never written by the losing side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from features.models import Feature, Workspace
from pipeline import engine
from pipeline.engine.locks import lock_first
from pipeline.models import Run
from tests.conftest import make_story
from tests.engine_helpers import card
from tests.integration.processes import wait_until

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"
)


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_stop_racing_a_deferred_claim_leaves_the_card_stopped(no_enqueue: Any) -> None:
    story = make_story()
    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=1)
    busy, victim = card(story.workspace, "Busy"), card(story.workspace, "Victim")
    with no_enqueue():
        held = engine.launch_pipeline(busy, story.owner).run
        assert engine.claim_run(held.pk, "worker-a/1") is not None  # the only slot is taken
        queued = engine.launch_pipeline(victim, story.owner).run
    stop_holds_lock, stop_may_finish = threading.Event(), threading.Event()

    def stop() -> int:
        with transaction.atomic():
            # Stop has the card's lock when the claim arrives for the card's run.
            lock_first(Feature.objects.filter(pk=victim.pk))
            stop_holds_lock.set()
            assert stop_may_finish.wait(30)
            return engine.stop_pipeline(victim, story.owner)

    stopper, stopped = in_thread(stop)
    assert stop_holds_lock.wait(30)
    claimer, claimed = in_thread(lambda: engine.claim_run(queued.pk, "worker-b/2"))
    wait_until(lock_waiters, timeout=30, what="the claim to wait for the card's lock")
    stop_may_finish.set()
    stopper.join(30)
    claimer.join(30)

    assert "error" not in stopped, stopped
    assert "error" not in claimed, claimed
    assert stopped["value"] == 1
    assert claimed["value"] is None
    queued.refresh_from_db()
    assert queued.status == Run.Status.CANCELLED
    victim.refresh_from_db()
    assert (victim.status, victim.status_note) == (
        Feature.Status.IDLE,
        "Pipeline stopped by alice",
    )
    # What the board shows is what the runs say, and stays so: no message or sweep revives it.
    engine.resume_deferred(story.workspace)
    engine.sweep_if_due("test")
    victim.refresh_from_db()
    assert victim.status == Feature.Status.IDLE
