"""What the engine asks of an LLM provider, and the two kinds of failure it understands."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Usage:
    """Token counts of one step's calls. `reported` is False once any call came back without
    usage (some OpenAI-compatible servers send none): the step's cost is then unknown, not 0."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reported: bool = True


@dataclass
class StepRequest:
    skill_slug: str
    output: str  # Skill.Output: document | tasks | score
    artifact_name: str
    prompt: str
    inputs: dict[str, str]
    sections: list[str]
    model: str
    timeout_seconds: float
    attempt: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    on_log: Callable[[str], None] = lambda message: None


@dataclass
class StepOutput:
    """A document (markdown) and, for structured skills, the parsed data.

    `truncated`: the model stopped at its output limit, so the document may be cut short (it
    is stored and flagged; a cut-off structured answer never gets this far).
    """

    text: str
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    truncated: bool = False


class ProviderError(Exception):
    transient = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientProviderError(ProviderError):
    """Worth retrying: rate limits, overload, timeouts, dropped connections."""

    transient = True


class PermanentProviderError(ProviderError):
    """Retrying cannot help: bad credentials, refusals, output invalid after repair."""


class StepCancelled(Exception):
    """The run was cancelled while this step was in flight."""


class Provider(Protocol):
    name: str

    def generate(self, request: StepRequest) -> StepOutput: ...
