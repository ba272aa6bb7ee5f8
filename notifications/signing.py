"""Webhook secrets and the ``X-Runway-Signature`` header.

A receiver checks ``HMAC-SHA256(secret, f"{t}.{body}")`` against ``v1`` in
``X-Runway-Signature: t=<unix seconds>,v1=<hex>`` (the scheme Stripe and Slack use; the
timestamp lets a receiver refuse replays older than a few minutes).

Why derived, not stored: signing needs the secret on the server, so a hash (as for API tokens)
cannot work. Each webhook stores only a random salt; its secret is
``whsec_`` + HMAC-SHA256(RUNWAY_WEBHOOK_KEY, salt). A database dump alone (backups, the admin,
a leaked replica) holds no secret, the key stays in the environment, and no encryption
library or key-rotation scheme is needed: a new secret is a new salt. Rotating the key changes
every secret at once (receivers must be told), the same trade-off an encryption key brings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

PREFIX = "whsec_"
HEADER = "X-Runway-Signature"


def new_salt() -> str:
    return secrets.token_hex(24)


def secret_for(salt: str) -> str:
    """The webhook secret derived from its stored salt (str, ``whsec_`` + 64 hex)."""
    key = settings.RUNWAY_WEBHOOK_KEY or settings.SECRET_KEY
    return (
        PREFIX
        + salted_hmac("runway.webhook-secret", salt, secret=key, algorithm="sha256").hexdigest()
    )


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
