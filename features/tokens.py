"""Personal API tokens: create (the secret is returned once), verify, revoke.

Only the sha256 of a secret is stored. Secrets carry 256 random bits, so a plain hash (no salt,
no slow KDF) is enough: there is nothing to brute-force, and a lookup by hash stays one indexed
query.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from features.models import ApiToken

SECRET_PREFIX = "rw_"  # noqa: S105 - a public marker that says "Runway token", not a secret
MAX_SECRET_LENGTH = 200
# last_used_at is for people ("used 3 min ago"), not an audit log: one write a minute per token
# keeps a busy script from turning every request into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenError(Exception):
    """A token request that cannot be carried out, with a message a person can act on."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def do_create_api_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored and never shown again."""
    name = (name or "").strip() or "API token"
    if len(name) > 100:
        raise TokenError("Token names are at most 100 characters.")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:8], token_hash=hash_secret(secret)
    )
    return token, secret


def do_revoke_api_token(token: ApiToken) -> ApiToken:
    """Revoke at once; revoking twice keeps the first time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def user_for_secret(secret: str) -> User | None:
    """The active user a live token belongs to, or None (unknown, revoked, inactive user)."""
    token = token_for_secret(secret)
    return None if token is None else token.user


def token_for_secret(secret: str) -> ApiToken | None:
    """The live token (with its active user) a secret names, or None; notes its use."""
    secret = secret.strip()
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ).update(last_used_at=now)
    return token
