"""What an outbound request can end in besides a response."""

from __future__ import annotations


class OutboundError(Exception):
    """The request was not made, or got no answer. The message is safe to show to users."""


class Refused(OutboundError):
    """The URL or an address it resolves to is not allowed; nothing was sent."""


class Unreachable(OutboundError):
    """No answer: DNS, connection, TLS, protocol or time limit. Deliberately vague, so that the
    difference between a closed port, a filtered one and a slow one never reaches the user."""

    def __init__(self, message: str = "Unreachable") -> None:
        super().__init__(message)
