"""Outbound HTTP requests made on behalf of users (health checks now, webhooks later).

One door for every request a user can aim: the URL is parsed, its host resolved, and every
resolved address must be public (or allowed by the operator's RUNWAY_OUTBOUND_ALLOW); the
connection then goes to one of those checked addresses and no other (no second DNS lookup that
could rebind), redirects are followed only through the same checks, and the whole exchange is
capped in time and size. Failures come back as "unreachable" or a status, never a socket error
that would turn the feature into a port scanner.

    from features.outbound import OutboundError, check_url, fetch

    check_url("https://shop.example/health")          # at save time: raises Refused
    response = fetch(url, timeout=10, max_bytes=65536)  # at request time
    response.status, response.body, response.url
"""

from __future__ import annotations

from features.outbound.addresses import Refused, check_url, refusal_reason
from features.outbound.client import OutboundError, Response, Unreachable, fetch

__all__ = [
    "OutboundError",
    "Refused",
    "Response",
    "Unreachable",
    "check_url",
    "fetch",
    "refusal_reason",
]
