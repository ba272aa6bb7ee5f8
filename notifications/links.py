"""Signed, expiring, single-use links for Accept, Reject and Start.

A link carries (run, action, person, nonce) signed with Django's TimestampSigner, so it cannot
be forged or edited and expires after RUNWAY_DECISION_LINK_MAX_AGE_SECONDS. Opening it (GET)
only shows a confirmation page — mail scanners and chat unfurlers prefetch links — and the
POST from that page acts once: its nonce is stored (UsedLink, unique) in the transaction that
records the decision. Email links name their person; Slack links (a channel, not a person)
name nobody, so their page asks whoever opens it to sign in and decides as them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

ACTIONS = ("accept", "reject", "start")
_SALT = "runway.decision-link"


class LinkProblem(Exception):
    """Why a link cannot act; the message is shown to its holder as is."""


@dataclass(frozen=True)
class Claim:
    run_id: int
    action: str
    user_id: int | None  # None: whoever signs in (a link posted to a channel)
    nonce: str


def absolute(path: str) -> str:
    return settings.RUNWAY_BASE_URL.rstrip("/") + path


def decision_link(run_id: int, action: str, user_id: int | None) -> str:
    """An absolute URL to the confirmation page for `action` on the run."""
    assert action in ACTIONS
    token = signing.TimestampSigner(salt=_SALT).sign_object(
        {"r": run_id, "a": action, "u": user_id, "n": secrets.token_urlsafe(12)}
    )
    return absolute(reverse("notifications:decide", args=[token]))


def read(token: str) -> Claim:
    """The claim a link makes. Raises LinkProblem when it was altered or has expired."""
    try:
        data = signing.TimestampSigner(salt=_SALT).unsign_object(
            token, max_age=settings.RUNWAY_DECISION_LINK_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise LinkProblem(
            "This link has expired. Open the card in Runway to decide there."
        ) from None
    except signing.BadSignature:
        raise LinkProblem("This link is not valid: it may have been cut or altered.") from None
    try:
        claim = Claim(int(data["r"]), str(data["a"]), data["u"], str(data["n"]))
    except (KeyError, TypeError, ValueError):
        raise LinkProblem("This link is not valid.") from None
    if claim.action not in ACTIONS or not (claim.user_id is None or isinstance(claim.user_id, int)):
        raise LinkProblem("This link is not valid.")
    return claim
