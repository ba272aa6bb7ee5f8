"""A log stream (SSE) ends within seconds when the access it was opened with is gone, and the
open streams of a person and of a token are capped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from django.http import StreamingHttpResponse
from django.test import Client

from features.models import ApiToken, Membership
from features.tokens import do_create_api_token, do_revoke_api_token
from pipeline.models import Run
from tests.api_helpers import error_of
from tests.engine_helpers import card


@pytest.fixture(autouse=True)
def _fast_streams(settings):
    settings.RUNWAY_API_STREAM_POLL_SECONDS = 0.05
    settings.RUNWAY_API_STREAM_ACCESS_CHECK_SECONDS = 0.2


@pytest.fixture
def running(story) -> Run:
    feature = card(story.workspace)
    return Run.objects.create(
        feature=feature, workspace=story.workspace, stage=feature.stage, status="running"
    )


def _url(run: Run) -> str:
    return f"/api/runs/{run.pk}/logs?stream=true"


def _bearer(user: Any) -> tuple[Client, ApiToken]:
    token, secret = do_create_api_token(user, "stream")
    return Client(headers={"Authorization": f"Bearer {secret}"}), token


def _ends_within(chunks: Iterator[bytes], seconds: float) -> str:
    """Read until the stream ends; the text of its last event."""
    deadline = time.monotonic() + seconds
    last = ""
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else str(chunk)
        if text.strip() and not text.startswith(":"):
            last = text
        assert time.monotonic() < deadline, "the stream went on after its access ended"
    return last


def _stream_then(client: Client, run: Run, change: Callable[[], object]) -> str:
    response = client.get(_url(run))
    assert response.status_code == 200
    chunks = cast(Iterator[bytes], cast(StreamingHttpResponse, response).streaming_content)
    next(chunks)  # the retry hint: the stream is open
    change()
    try:
        return _ends_within(chunks, 5)
    finally:
        response.close()


def test_revoking_the_token_ends_its_open_stream(story, running):
    client, token = _bearer(story.teammate)

    last = _stream_then(client, running, lambda: do_revoke_api_token(token))

    assert last.startswith("event: error")
    assert '"forbidden"' in last


def test_removing_the_member_ends_their_open_stream(story, running):
    client, _ = _bearer(story.teammate)

    def remove() -> None:
        Membership.objects.filter(user=story.teammate, workspace=story.workspace).delete()

    last = _stream_then(client, running, remove)

    assert '"forbidden"' in last


def test_logging_out_ends_the_browsers_open_stream(story, running):
    client = Client()
    client.force_login(story.teammate)
    other_tab = Client()
    other_tab.cookies = client.cookies

    last = _stream_then(client, running, lambda: other_tab.post("/logout/"))

    assert '"forbidden"' in last


# Closing a response ends its request, which closes the database connection: these tests use
# real transactions, as a server does.
@pytest.mark.django_db(transaction=True)
def test_it_caps_the_open_streams_of_a_token(story, running, settings):
    settings.RUNWAY_API_STREAMS_PER_TOKEN = 2
    client, _ = _bearer(story.teammate)
    first, second = client.get(_url(running)), client.get(_url(running))

    refused = client.get(_url(running))
    first.close()
    again = client.get(_url(running))

    assert (first.status_code, second.status_code) == (200, 200)
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "too_many_streams"
    assert "2 open log streams per token" in error_of(refused)["message"]
    assert again.status_code == 200
    second.close()
    again.close()


@pytest.mark.django_db(transaction=True)
def test_it_caps_the_open_streams_of_a_person_across_tokens(story, running, settings):
    settings.RUNWAY_API_STREAMS_PER_USER = 2
    opened = [_bearer(story.teammate)[0].get(_url(running)) for _ in range(2)]

    refused = _bearer(story.teammate)[0].get(_url(running))
    other_person = _bearer(story.owner)[0].get(_url(running))

    assert [r.status_code for r in opened] == [200, 200]
    assert refused.status_code == 429
    assert "per person" in error_of(refused)["message"]
    assert other_person.status_code == 200
    for response in [*opened, other_person]:
        response.close()
