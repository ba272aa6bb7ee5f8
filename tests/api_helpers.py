"""Helpers for the API tests: token clients, the error shape, and a clean launch count."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from features.tokens import do_create_api_token


def token_for(user: User) -> str:
    return do_create_api_token(user, "tests")[1]


def api_client(user: User | None = None) -> Client:
    """A client that authenticates with a fresh bearer token (anonymous without a user)."""
    if user is None:
        return Client()
    return Client(headers={"Authorization": f"Bearer {token_for(user)}"})


def error_of(response: Any) -> dict[str, Any]:
    """The API's error object, after checking it is JSON in the documented shape."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "field"}, body
    return body["error"]


def reset_launch_limits() -> None:
    """User ids repeat across tests (rolled-back SQLite sequences): forget earlier counts."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter("runway:api:launches:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
