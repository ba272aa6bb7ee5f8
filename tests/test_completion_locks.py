"""The completion's one locking statement keeps the engine's lock order, card then run, on
real connections in real threads (PostgreSQL): locking the run first would deadlock against a
stop or rescue that holds the card and waits for the run."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from features.models import Feature
from pipeline import engine
from pipeline.engine.locks import lock_card_and_run
from pipeline.models import Run
from tests.conftest import make_story
from tests.engine_helpers import card

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def _card_is_locked(feature_id: int) -> bool:
    try:
        with transaction.atomic():
            Feature.objects.select_for_update(nowait=True).filter(pk=feature_id).exists()
    except DatabaseError:
        return True
    return False


def test_the_completion_locks_the_card_before_it_waits_for_the_run(no_enqueue: Any) -> None:
    story = make_story()
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
    run_held, release, completion_locked = threading.Event(), threading.Event(), {}

    def hold_the_run() -> None:  # what a heartbeat or another engine path does for a moment
        try:
            with transaction.atomic():
                Run.objects.select_for_update().filter(pk=run.pk).exists()
                run_held.set()
                release.wait(30)
        finally:
            connection.close()

    def complete() -> None:
        try:
            with transaction.atomic():
                locked = lock_card_and_run(run.pk)
                completion_locked["run"] = None if locked is None else locked[1].pk
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_run, daemon=True)
    holder.start()
    assert run_held.wait(10)
    completer = threading.Thread(target=complete, daemon=True)
    completer.start()
    try:
        deadline = time.monotonic() + 10
        while not _card_is_locked(feature.pk):  # the completion holds the card, waits on the run
            assert time.monotonic() < deadline, "the completion never locked the card"
            time.sleep(0.05)
        assert completion_locked == {}  # still waiting for the run
    finally:
        release.set()
        holder.join(30)
        completer.join(30)
    assert completion_locked == {"run": run.pk}
    assert not _card_is_locked(feature.pk)
