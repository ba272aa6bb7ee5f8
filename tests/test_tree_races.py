"""Trees' races on real connections in real threads (PostgreSQL). Two things ending at the same
moment each see the other unfinished until it commits; without a lock both would conclude
"not yet", and a batch would never finish or a waiting card never start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from features.models import Dependency, Feature
from pipeline import engine
from pipeline.engine import trees, waiting
from pipeline.engine.card_state import engine_transaction
from pipeline.engine.launching import start_card
from pipeline.engine.locks import lock_feature
from pipeline.models import Batch, Run
from tests.conftest import make_story
from tests.engine_helpers import card, stage

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


@pytest.mark.django_db(transaction=True)
def test_two_last_runs_ending_at_once_finish_the_batch_once(
    no_enqueue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = make_story()
    cards: list[Feature] = [card(story.workspace, f"Card {i}") for i in range(2)]
    batch = Batch.objects.create(workspace=story.workspace, kind=Batch.Kind.SUBTASKS)
    with no_enqueue(), engine_transaction():
        runs = [start_card(lock_feature(c.pk), story.owner, batch_id=batch.pk).run for c in cards]
    claimed = [engine.claim_run(r.pk, f"worker-{i}/1") for i, r in enumerate(runs)]
    assert all(c is not None for c in claimed)
    toasts: list[str] = []
    monkeypatch.setattr(
        trees.events, "toast_on_commit", lambda workspace_id, message, **kw: toasts.append(message)
    )
    # Both transactions have ended their run and hold their card when they look at the batch.
    both_ended = threading.Barrier(2, timeout=30)
    finish = trees.finish_if_done

    def finish_together(batch_id: int) -> bool:
        both_ended.wait()
        return finish(batch_id)

    monkeypatch.setattr(trees, "finish_if_done", finish_together)

    threads = [
        in_thread(lambda run=run, c=c: engine.fail_run(run.pk, c.attempt, "boom"))  # type: ignore[misc]
        for run, c in zip(runs, claimed, strict=True)
    ]
    for thread, _ in threads:
        thread.join(60)

    for _, outcome in threads:
        assert outcome == {"value": True}
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert batch.summary["failed"] == 2
    batch_toasts = [t for t in toasts if not t.startswith("“Card")]  # the cards' own failures
    assert batch_toasts == ["Nothing new was added; 2 cards failed or stopped"]


@pytest.mark.django_db(transaction=True)
def test_two_dependencies_finishing_at_once_start_the_waiting_card(
    no_enqueue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = make_story("delivery")
    # In two columns, and finished into two more: moves take turns on the columns they touch,
    # so only moves with no column in common can still race on the card that waits for both.
    first, second = card(story.workspace, "Schema"), card(story.workspace, "API", at="spec")
    waiting_card = card(story.workspace, "Checkout", at="building")
    for dependency in (first, second):
        Dependency.objects.create(feature=waiting_card, depends_on=dependency)
    with no_enqueue():
        engine.move_feature(waiting_card, stage(story.workspace, "qa"), user=story.owner)
    (run,) = waiting_card.runs.all()
    assert run.status == Run.Status.WAITING
    # Both moves have committed nothing yet when they look at the card that waits for them.
    both_moved = threading.Barrier(2, timeout=30)
    release = waiting.release_ready

    def release_together(feature_ids: Any) -> list[int]:
        both_moved.wait()
        return release(feature_ids)

    monkeypatch.setattr(waiting, "release_ready", release_together)
    finished = (stage(story.workspace, "done"), stage(story.workspace, "live"))

    threads = [
        in_thread(lambda c=c, s=s: engine.move_feature(c, s, user=story.owner))  # type: ignore[misc]
        for c, s in zip((first, second), finished, strict=True)
    ]
    for thread, _ in threads:
        thread.join(60)

    for _, outcome in threads:
        assert "error" not in outcome, outcome
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED  # released by whichever committed second
