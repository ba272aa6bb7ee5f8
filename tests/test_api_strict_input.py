"""The API's input rules: strict JSON types (no coercion), bodies refused over the limit before
they are read (declared or chunked), nesting limits, and NUL characters: a 4xx that says what
to fix, and nothing written."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.conf import settings

from config.body_limit import body_limit
from features.models import Feature
from pipeline.models import Run
from skills.models import StageRecipe
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.engine_helpers import card

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    reset_launch_limits()


def post(client, url: str, body: Any):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"launch": "yes"}, "launch"),
        ({"launch": 1}, "launch"),
        ({"parent": True}, "parent"),
        ({"parent": "1"}, "parent"),
        ({"title": 42}, "title"),
        ({"kind": ["feature"]}, "kind"),
    ],
)
def test_create_refuses_values_of_the_wrong_type(story, change: dict, field: str) -> None:
    body = {"workspace": story.workspace.slug, "title": "Typed", **change}

    response = post(api_client(story.owner), "/api/features", body)

    assert response.status_code == 422
    assert error_of(response)["field"] == field
    assert not Feature.objects.filter(title="Typed").exists()
    assert not Run.objects.exists()


def test_recipe_and_move_and_run_inputs_are_strict_too(story) -> None:
    client = api_client(story.owner)
    recipe = StageRecipe.objects.filter(stage__workspace=story.workspace).order_by("id")[0]
    feature = card(story.workspace)

    disabled = client.patch(
        f"/api/recipes/{recipe.pk}", json.dumps({"enabled": 0}), content_type="application/json"
    )
    moved = post(client, f"/api/features/{feature.pk}/move", {"stage": "tasks", "position": "0"})
    edited = client.patch(
        f"/api/features/{feature.pk}",
        json.dumps({"version": "1", "title": "x"}),
        content_type="application/json",
    )

    assert [r.status_code for r in (disabled, moved, edited)] == [422, 422, 422]
    assert error_of(disabled)["field"] == "enabled"
    recipe.refresh_from_db()
    feature.refresh_from_db()
    assert recipe.enabled is True
    assert (feature.stage.key, feature.title) == ("idea", "Checkout page")


def test_a_deeply_nested_body_is_a_400_not_a_crash(story) -> None:
    client = api_client(story.owner)
    deep = '{"workspace": ' + "[" * 20_000 + "]" * 20_000 + "}"

    response = client.post("/api/features", deep, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


def test_a_nul_in_a_path_or_query_is_a_400(story) -> None:
    client = api_client(story.owner)

    in_query = client.get("/api/features", {"stage": "live\x00"})
    in_path = client.get("/api/skills/1%00")

    assert in_query.status_code == 400
    assert "NUL" in error_of(in_query)["message"]
    assert in_path.status_code in (400, 404)
    error_of(in_path)


def test_an_oversized_body_with_a_content_length_is_refused_before_it_is_read(story) -> None:
    client = api_client(story.owner)
    body = json.dumps({"workspace": "x", "title": "y" * (settings.RUNWAY_API_MAX_BODY_BYTES)})

    response = client.post("/api/features", body, content_type="application/json")

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


# --- the ASGI guard, driven directly: what it reads and what reaches Django -----------------


class Recorder:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.reads = 0
        self.sent: list[dict[str, Any]] = []
        self.app_called = False
        self.app_body = b""

    async def receive(self) -> dict[str, Any]:
        index = self.reads
        self.reads += 1
        return {
            "type": "http.request",
            "body": self.chunks[index],
            "more_body": index < len(self.chunks) - 1,
        }

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.app_called = True
        while True:
            message = await receive()
            self.app_body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def run(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        scope = {"type": "http", "path": path, "method": "POST", "headers": headers}

        async def call() -> None:
            await body_limit(self.app)(scope, self.receive, self.send)

        asyncio.run(call())

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def test_the_guard_refuses_a_declared_length_without_reading_anything() -> None:
    limit = settings.RUNWAY_API_MAX_BODY_BYTES
    recorder = Recorder([b"x" * 1024] * 100)

    recorder.run("/api/features", [(b"content-length", str(limit + 1).encode())])

    assert (recorder.status, recorder.reads, recorder.app_called) == (413, 0, False)
    assert json.loads(recorder.body)["error"]["code"] == "too_large"


def test_the_guard_stops_reading_a_chunked_body_at_the_limit() -> None:
    limit = settings.RUNWAY_API_MAX_BODY_BYTES
    chunk = 4096
    recorder = Recorder([b"x" * chunk] * 1000)  # 4 MB, no Content-Length

    recorder.run("/api/features", [])

    assert recorder.status == 413
    assert json.loads(recorder.body)["error"]["code"] == "too_large"
    assert recorder.reads == limit // chunk + 1  # not one chunk past the limit
    assert recorder.app_called is False


def test_the_guard_passes_a_chunked_body_under_the_limit_unchanged() -> None:
    recorder = Recorder([b'{"a":', b" 1}"])

    recorder.run("/api/features", [])

    assert recorder.status == 201
    assert recorder.app_body == b'{"a": 1}'


def test_pages_have_their_own_larger_limit_with_a_plain_413() -> None:
    api_sized = Recorder([b"x" * (settings.RUNWAY_API_MAX_BODY_BYTES + 1)])
    api_sized.run("/w/team/skills/import", [])
    too_big = Recorder([b"x" * (settings.RUNWAY_MAX_BODY_BYTES + 1)])
    too_big.run("/w/team/skills/import", [])

    assert api_sized.status == 201
    assert too_big.status == 413
    assert b"too large" in too_big.body
