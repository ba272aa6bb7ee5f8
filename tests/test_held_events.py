"""A completion sends the next run's message before the board's events: events published
while a block is held leave, in order, when it ends (features.events.held)."""

from __future__ import annotations

from typing import Any

import pytest

from features import events
from pipeline import engine, executor
from pipeline.models import Run
from tests.engine_helpers import card, stage


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What left, in order: ("event", group, event) and ("run", run_id) for messages."""
    record: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        events._publisher, "send", lambda group, event: record.append(("event", (group, event)))
    )
    monkeypatch.setattr(
        "pipeline.engine.runs.enqueue", lambda run_id, **_: record.append(("run", run_id))
    )
    return record


def test_events_published_in_a_held_block_leave_in_order_when_it_ends(sent):
    events.publish("before", {"type": "a"})
    with events.held():
        events.publish("one", {"type": "b"})
        with events.held():
            events.publish("two", {"type": "c"})
        assert [item[1][0] for item in sent] == ["before"]  # the inner block hands to the outer
        events.publish("three", {"type": "d"})
    assert [item[1][0] for item in sent] == ["before", "one", "two", "three"]


def test_a_held_block_that_raises_still_lets_its_events_go(sent):
    def publish_then_fail() -> None:
        with events.held():
            events.publish("committed before the error", {"type": "a"})
            raise RuntimeError

    with pytest.raises(RuntimeError):
        publish_then_fail()
    assert [item[1][0] for item in sent] == ["committed before the error"]


@pytest.mark.django_db(transaction=True)
def test_a_completion_sends_the_next_run_before_the_cards_move_is_told(story, sent):
    feature = card(story.workspace, "Checkout")
    first = engine.launch_pipeline(feature, story.owner).run
    sent.clear()

    executor.execute_run(first.pk, "worker/1")

    following = Run.objects.get(parent_run=first)
    moved = {stage(story.workspace, "architecture").pk, stage(story.workspace, "tasks").pk}
    told = [
        index
        for index, (kind, item) in enumerate(sent)
        if kind == "event" and set(item[1].get("stage_ids", ())) == moved
    ]
    assert told, sent  # the board heard of the move
    assert sent.index(("run", following.pk)) < told[0]
