"""The run log websocket: members get each new line as an htmx append; nobody else connects.

Users authenticate the way a browser does, with a session cookie, through the same
AuthMiddlewareStack as config.asgi; events go through the real Redis channel layer.
"""

from __future__ import annotations

import re

import pytest

from features.models import Feature
from pipeline.models import Run
from pipeline.runlog import append_log
from tests.conftest import make_story
from tests.engine_helpers import card
from tests.websocket_helpers import Session, websocket_session

pytestmark = pytest.mark.django_db(transaction=True)


def _session(user, path: str, *, then=None, expect: int = 0) -> Session:
    return websocket_session(user, path, then=then, expect=expect)


def _run(feature: Feature, status: str = Run.Status.RUNNING) -> Run:
    return Run.objects.create(
        workspace=feature.workspace, feature=feature, stage=feature.stage, status=status
    )


def _seqs(message: str) -> list[int]:
    return [int(s) for s in re.findall(r'data-seq="(\d+)"', message)]


def test_it_sends_a_member_each_new_line_as_an_out_of_band_append():
    story = make_story()
    run = _run(card(story.workspace))
    append_log(run.pk, "already on the page")

    session = _session(
        story.teammate,
        f"/ws/runs/{run.pk}/",
        then=lambda: append_log(run.pk, "Step 1/2: <architecture> & more"),
        expect=1,
    )

    assert session.connected is True
    (message,) = session.received
    assert message.startswith(f'<div id="log-lines-{run.pk}" hx-swap-oob="beforeend">')
    assert _seqs(message) == [2]
    assert "Step 1/2: &lt;architecture&gt; &amp; more" in message
    assert "already on the page" not in message
    assert "log-status" not in message  # the run is still running


def test_it_lets_a_viewer_watch():
    story = make_story()
    run = _run(card(story.workspace))

    session = _session(
        story.viewer, f"/ws/runs/{run.pk}/", then=lambda: append_log(run.pk, "hello"), expect=1
    )

    assert _seqs(session.received[0]) == [1]


def test_it_replays_the_lines_after_the_given_seq_on_connect():
    story = make_story()
    run = _run(card(story.workspace))
    for i in range(1, 5):
        append_log(run.pk, f"line {i}")

    session = _session(story.owner, f"/ws/runs/{run.pk}/?after=2", expect=1)

    (message,) = session.received
    assert _seqs(message) == [3, 4]
    assert "line 3" in message
    assert "line 4" in message
    assert "line 2" not in message


def test_it_replays_then_follows_without_repeating_a_line():
    story = make_story()
    run = _run(card(story.workspace))
    append_log(run.pk, "line 1")
    append_log(run.pk, "line 2")

    session = _session(
        story.owner,
        f"/ws/runs/{run.pk}/?after=1",
        then=lambda: append_log(run.pk, "line 3"),
        expect=2,
    )

    assert [_seqs(m) for m in session.received] == [[2], [3]]


def test_it_says_when_the_run_has_ended():
    story = make_story()
    run = _run(card(story.workspace), status=Run.Status.SUCCEEDED)

    session = _session(
        story.owner,
        f"/ws/runs/{run.pk}/",
        then=lambda: append_log(run.pk, "Pipeline finished"),
        expect=1,
    )

    assert (
        f'<p id="log-status-{run.pk}" class="log-status ended" hx-swap-oob="true">'
        in (session.received[0])
    )
    assert "This run has ended: Succeeded." in session.received[0]


def test_it_sends_nothing_of_another_run():
    story = make_story()
    feature = card(story.workspace)
    watched = _run(feature)
    other = _run(card(story.workspace, "Other card"))

    session = _session(
        story.owner, f"/ws/runs/{watched.pk}/", then=lambda: append_log(other.pk, "not yours")
    )

    assert session.connected is True
    assert session.received == []


def test_it_refuses_an_outsider():
    story = make_story()
    run = _run(card(story.workspace))

    session = _session(story.outsider, f"/ws/runs/{run.pk}/")

    assert session.connected is False
    assert session.code == 4404


def test_it_refuses_an_anonymous_user():
    story = make_story()
    run = _run(card(story.workspace))

    session = _session(None, f"/ws/runs/{run.pk}/")

    assert (session.connected, session.code) == (False, 4404)


def test_it_answers_a_missing_run_like_a_foreign_one():
    story = make_story()

    session = _session(story.owner, "/ws/runs/999999/")

    assert (session.connected, session.code) == (False, 4404)
