"""The engine's refusals: requests it declines with a message a person can act on."""

from __future__ import annotations


class EngineError(Exception):
    """A request the engine refuses, with a message a person can act on."""

    code = "invalid"


class AlreadyRunning(EngineError):
    code = "already_running"


class NothingToRun(EngineError):
    code = "nothing_to_run"
