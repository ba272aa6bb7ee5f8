"""What every API router shares: the error shape, field types that refuse bad text, the caller,
and the launch rate limit.

Every error leaves the API as ``{"error": {"code", "message", "field"?}}``; routers raise
``ApiError`` (or the domain's own exceptions, which ``config.api`` maps) and never build one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Annotated, Any

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StringConstraints

logger = logging.getLogger(__name__)

# Largest id a database primary key can hold: a bigger number is a 422, not an overflow.
MAX_ID = 2**63 - 1


class ApiError(Exception):
    """An answer other than success, with a machine-readable code and a message for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


class ErrorDetail(Schema):
    code: str
    message: str
    field: str | None = None


class ErrorOut(Schema):
    error: ErrorDetail


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field:
        detail["field"] = field
    return {"error": detail}


# The statuses each kind of operation can answer besides success, for the OpenAPI schema.
# 400: a NUL character in the path or query, or a body that is not JSON (or nested too deep).
READ_ERRORS = (400, 401, 404, 422)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 422)
LAUNCH_ERRORS = (*WRITE_ERRORS, 429)


def responses(ok: dict[int, Any], codes: Iterable[int]) -> dict[int, Any]:
    return {**ok, **{code: ErrorOut for code in codes}}


class Input(Schema):
    """Request bodies: an unknown field is a mistake worth a 422, not something to ignore, and
    so is a value of the wrong JSON type (strict mode): "yes" is not true, true is not card 1,
    0 is not false."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- Field types ---------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be stored as UTF-8: both
    # would otherwise surface as a 500 from the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def integral(value: object) -> object:
    """JSON Schema counts 1.0 as an integer, so strict mode takes it as 1; 1.5, "1" and true
    stay wrong."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


NO_NUL = {"pattern": "^[^\\u0000]*$"}
Text = Annotated[str, AfterValidator(clean_text), Field(json_schema_extra=NO_NUL)]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(clean_text),
    # At least one character that is not whitespace; no NUL (PostgreSQL cannot store it).
    Field(json_schema_extra={"pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}),
]
Description = Annotated[
    str,
    StringConstraints(max_length=20_000),
    AfterValidator(clean_text),
    Field(json_schema_extra=NO_NUL),
]
Note = Annotated[
    str,
    StringConstraints(max_length=500),
    AfterValidator(clean_text),
    Field(json_schema_extra=NO_NUL),
]
Slug = Annotated[str, StringConstraints(pattern=r"^[-a-zA-Z0-9_]+$", max_length=80)]
# Stage keys are lowercase slugs; one that is not on the workspace's boards is a 404.
StageKey = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40),
    Field(description="A stage key of the workspace (GET /api/workspaces lists them); 404 if not."),
]
# Bounds first, then the validator: that order keeps them as minimum/maximum in the schema.
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(integral)]
Version = Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(integral)]
Position = Annotated[int, Field(ge=0, le=1_000_000), BeforeValidator(integral)]


# --- The caller ----------------------------------------------------------------------------------


def caller(request: HttpRequest) -> User:
    """The user the request authenticated as (token or session); set by config.api's auth."""
    user = getattr(request, "auth", None)
    if not isinstance(user, User):  # the API's auth never lets an anonymous request through
        raise ApiError(401, "unauthenticated", "Log in or send an API token.")
    return user


# --- Launch rate limit -------------------------------------------------------------------------

RATE_WINDOW_SECONDS = 60


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def launch_rate_key(user_id: int) -> str:
    return f"runway:api:launches:{user_id}"


def check_launch_rate(user: User) -> None:
    """Count one launch for the user; past the limit, refuse with 429 and Retry-After.

    A fixed one-minute window in Redis, so every web process shares one count. SET NX EX then
    INCR in one transaction: the window's expiry is set exactly once, and never lost.
    """
    limit = settings.RUNWAY_API_LAUNCHES_PER_MINUTE
    if limit <= 0:
        return
    key = launch_rate_key(user.pk)
    try:
        with _redis(settings.REDIS_URL).pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=RATE_WINDOW_SECONDS, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = pipe.execute()
    except redis.RedisError:
        # Launching needs the broker anyway; a Redis hiccup should not also refuse the request.
        logger.warning("launch rate limit unavailable; allowing the launch", exc_info=True)
        return
    if int(count) > limit:
        wait = max(int(ttl), 1)
        raise ApiError(
            429,
            "rate_limited",
            f"At most {limit} launches a minute; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )


def require_site_admin(user: User) -> None:
    """Server-wide operations (rescue every workspace's stalled runs, forget old heartbeats,
    sync the built-in skills every workspace shares) are for site administrators only
    (Django's is_superuser): a workspace owner acts on their own workspaces' runs."""
    if not user.is_superuser:
        raise ApiError(
            403,
            "forbidden",
            "Only site administrators can do this: it acts on every workspace. Workspace "
            'admins rescue their own runs with POST /api/runs/{id} {"action": "rescue"}.',
        )
