"""GET /api/runs/{id}/logs?stream=true: Server-Sent Events, one per line, until the run ends."""

from __future__ import annotations

import json
from typing import cast

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from django.test import AsyncClient

from pipeline import engine
from pipeline.models import Run
from pipeline.runlog import append_log
from tests.api_helpers import api_client, error_of, token_for
from tests.engine_helpers import card, chain


@pytest.fixture(autouse=True)
def _fast_polls(settings):
    settings.RUNWAY_API_STREAM_POLL_SECONDS = 0


@pytest.fixture
def finished(story, eager):
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    return chain(feature)


def stream_url(run: Run) -> str:
    return f"/api/runs/{run.pk}/logs?stream=true"


def events(raw: bytes) -> list[dict[str, str]]:
    """Parse an event stream: one dict per event, comments and the retry hint left out."""
    parsed = []
    for block in raw.decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            parsed.append(fields)
    return parsed


def streamed(response) -> StreamingHttpResponse:
    assert response.streaming, response.content
    return cast(StreamingHttpResponse, response)


def read_all(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    return events(b"".join(streamed(response)))


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_sends_every_line_with_its_seq_then_ends(story, finished, who):
    run, next_run = finished

    received = read_all(api_client(getattr(story, who)).get(stream_url(run)))

    lines, end = received[:-1], received[-1]
    assert [int(e["id"]) for e in lines] == list(range(1, run.logs.count() + 1))
    assert [json.loads(e["data"])["seq"] for e in lines] == [int(e["id"]) for e in lines]
    assert json.loads(lines[0]["data"])["message"] == "Launched: architecture → tasks"
    assert end["event"] == "end"
    assert json.loads(end["data"]) == {
        "run_id": run.pk,
        "status": "succeeded",
        "next_run": next_run.pk,
    }


def test_it_resumes_after_the_last_event_id(story, finished):
    run = finished[0]

    received = read_all(
        api_client(story.owner).get(stream_url(run), headers={"Last-Event-ID": "2"})
    )

    assert [int(e["id"]) for e in received[:-1]] == list(range(3, run.logs.count() + 1))


def test_it_follows_a_live_run_until_it_finishes(story, no_enqueue):
    with no_enqueue():
        run = engine.launch_pipeline(card(story.workspace), story.owner).run
    response = streamed(api_client(story.owner).get(stream_url(run)))
    chunks = iter(response)

    assert next(chunks) == b"retry: 2000\n\n"
    assert events(next(chunks))[0]["id"] == "1"

    # The stream keeps polling: what is written now arrives next, then the end.
    append_log(run.pk, "Step 1/1: write-architecture")
    with no_enqueue():
        engine.stop_pipeline(run.feature, story.owner)
    rest = events(b"".join(chunks))

    assert [e.get("id") for e in rest] == ["2", "3", None]
    assert json.loads(rest[1]["data"])["message"] == "Cancelled: pipeline stopped by alice"
    assert json.loads(rest[2]["data"])["status"] == "cancelled"


def test_it_ends_at_its_time_limit_so_the_client_resumes(story, no_enqueue, settings):
    settings.RUNWAY_API_STREAM_MAX_SECONDS = 0
    with no_enqueue():
        run = engine.launch_pipeline(card(story.workspace), story.owner).run

    response = streamed(api_client(story.owner).get(stream_url(run)))
    raw = b"".join(response).decode()

    assert [e["id"] for e in events(raw.encode())] == ["1"]
    assert raw.endswith(": time limit reached; reconnect with Last-Event-ID to go on\n\n")


def test_it_streams_asynchronously_under_asgi(story, finished):
    run = finished[0]
    token = token_for(story.owner)

    async def read() -> tuple[bool, bytes]:
        response = streamed(
            await AsyncClient().get(stream_url(run), headers={"Authorization": f"Bearer {token}"})
        )
        chunks = [chunk async for chunk in response]
        return response.is_async, b"".join(chunks)

    is_async, raw = async_to_sync(read)()

    assert is_async  # daphne sends each event as it comes, instead of buffering the whole run
    received = events(raw)
    assert [int(e["id"]) for e in received[:-1]] == list(range(1, run.logs.count() + 1))
    assert received[-1]["event"] == "end"


def test_it_hides_the_run_from_an_outsider(story, finished):
    response = api_client(story.outsider).get(stream_url(finished[0]))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_it_asks_an_anonymous_caller_to_authenticate(story, finished):
    response = api_client().get(stream_url(finished[0]))

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_it_refuses_a_last_event_id_that_is_not_a_number(story, finished):
    response = api_client(story.owner).get(
        stream_url(finished[0]), headers={"Last-Event-ID": "abc"}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "Last-Event-ID"
