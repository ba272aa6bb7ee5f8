"""What keeps a log stream (SSE) honest: a capped number open per person and per API token, and
an end as soon as the access it was opened with is gone.

Caps are leases in Redis (pipeline.limits), shared by every web process; a stream renews its
lease while it runs, so a server killed mid-stream frees its slot within one lease. Access is
checked again every RUNWAY_API_STREAM_ACCESS_CHECK_SECONDS: the user still a member of the run's
workspace and active, the token not revoked, the browser session not logged out.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from importlib import import_module

import redis
from django.conf import settings
from django.http import HttpRequest

from features.api.base import ApiError
from features.models import ApiToken, Membership
from pipeline.limits import release_lease, renew_lease, take_lease

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
KEY_PREFIX = "runway:api:streams"


@dataclass
class StreamGrant:
    """Who a stream was opened for, and the caps it holds."""

    user_id: int
    workspace_id: int
    token_id: int | None = None
    session_key: str | None = None
    leases: list[str] = field(default_factory=list)
    lease_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    renewed_at: float = field(default_factory=time.monotonic)
    checked_at: float = field(default_factory=time.monotonic)


def open_grant(request: HttpRequest, user_id: int, workspace_id: int) -> StreamGrant:
    """Take the caller's stream slots. Raises ApiError 429 when the person or the token
    already holds as many open streams as allowed."""
    token_id = getattr(request, "api_token_id", None)
    session = getattr(request, "session", None)
    grant = StreamGrant(
        user_id,
        workspace_id,
        token_id=token_id,
        session_key=None if token_id is not None else getattr(session, "session_key", None),
    )
    caps = [(f"{KEY_PREFIX}:user:{user_id}", settings.RUNWAY_API_STREAMS_PER_USER, "person")]
    if token_id is not None:
        caps.append(
            (f"{KEY_PREFIX}:token:{token_id}", settings.RUNWAY_API_STREAMS_PER_TOKEN, "token")
        )
    for key, limit, who in caps:
        if limit <= 0:
            continue
        try:
            taken = take_lease(key, grant.lease_id, limit, LEASE_SECONDS)
        except redis.RedisError:
            logger.warning("stream caps unavailable; opening the stream without one")
            continue
        if not taken:
            close_grant(grant)
            raise ApiError(
                429,
                "too_many_streams",
                f"At most {limit} open log streams per {who}; close one and try again.",
                headers={"Retry-After": "5"},
            )
        grant.leases.append(key)
    return grant


def keep_grant(grant: StreamGrant) -> bool:
    """Renew the stream's leases now and then, and check its access again; False when the
    stream must end (its access is gone)."""
    now = time.monotonic()
    if now - grant.renewed_at >= LEASE_SECONDS / 3:
        grant.renewed_at = now
        for key in grant.leases:
            try:
                renew_lease(key, grant.lease_id, LEASE_SECONDS)
            except redis.RedisError:
                logger.warning("could not renew stream lease %s", key)
    if now - grant.checked_at < settings.RUNWAY_API_STREAM_ACCESS_CHECK_SECONDS:
        return True
    grant.checked_at = now
    return access_holds(grant)


def access_holds(grant: StreamGrant) -> bool:
    member = Membership.objects.filter(
        user_id=grant.user_id, workspace_id=grant.workspace_id, user__is_active=True
    ).exists()
    if not member:
        return False
    if grant.token_id is not None:
        return ApiToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).exists()
    if grant.session_key is not None:
        store = import_module(settings.SESSION_ENGINE).SessionStore
        return bool(store().exists(grant.session_key))
    return True


def close_grant(grant: StreamGrant) -> None:
    for key in grant.leases:
        try:
            release_lease(key, grant.lease_id)
        except redis.RedisError:
            logger.warning("could not release stream lease %s (it expires on its own)", key)
    grant.leases.clear()
