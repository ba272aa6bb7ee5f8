"""Which door an action came through ("web", "api", "cli", "admin", "email"), for the log.

Code deep in a command (the engine, an action function) knows who acted but not through
which door; the door says so once: `audit.middleware.request_source` for HTTP requests, and
`with acting_from("cli"):` around a management command or any other entry point.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_source: ContextVar[str] = ContextVar("audit_source", default="web")


def current_source() -> str:
    """The source set by the innermost `acting_from` (default "web")."""
    return _source.get()


@contextmanager
def acting_from(source: str) -> Iterator[None]:
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


_summarised: ContextVar[bool] = ContextVar("audit_summarised", default=False)


def summarised() -> bool:
    """True inside `summarised_by_caller`: commands below should not write their own entry."""
    return _summarised.get()


@contextmanager
def summarised_by_caller() -> Iterator[None]:
    """The caller writes one entry for many commands (a bulk retry of 40 runs is one
    "bulk.retry"), so the per-command entries the engine would write are left out."""
    token = _summarised.set(True)
    try:
        yield
    finally:
        _summarised.reset(token)
