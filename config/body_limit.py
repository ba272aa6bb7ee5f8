"""An ASGI guard in front of Django: request bodies over the limit are refused before Django
reads them, whether the client declared a Content-Length or streams a chunked body.

/api/ answers 413 with the API's JSON error; other paths answer a plain-text 413. The API's
limit is RUNWAY_API_MAX_BODY_BYTES (64 KB); pages (forms, skill bundle uploads) get
RUNWAY_MAX_BODY_BYTES (2 MB). A chunked body is counted as it arrives and the request is
refused the moment the count passes the limit; below it, the chunks already read are handed
to Django unchanged.

The web server in front (daphne) buffers what a client sends before the application runs;
in production a proxy's own body limit (nginx client_max_body_size) stops a huge upload
earlier still.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Any, Any, Any], Awaitable[None]]

API_PREFIX = "/api/"


def limit_for(path: str) -> int:
    if path.startswith(API_PREFIX):
        return int(settings.RUNWAY_API_MAX_BODY_BYTES)
    return int(settings.RUNWAY_MAX_BODY_BYTES)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    if scope["path"].startswith(API_PREFIX):
        size = f"{limit // 1024} KB" if limit >= 1024 else f"{limit} bytes"
        error = {"code": "too_large", "message": f"Request bodies are at most {size}."}
        body, kind = json.dumps({"error": error}).encode(), b"application/json"
    else:
        body, kind = f"Request body too large (at most {limit} bytes).".encode(), b"text/plain"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


def body_limit(app: App) -> App:
    """Wrap an ASGI app so that HTTP bodies over the limit never reach it."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            await _refuse(scope, send, limit)
            return
        # Read the body ourselves, counting, then replay it: at most `limit` bytes are held.
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                buffered.append(message)  # a disconnect: let Django see it
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _refuse(scope, send, limit)
                return
            buffered.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await app(scope, replay, send)

    return guarded
