"""Claude through the official SDK: streaming, tool use for structured output, usage for cost.

The SDK's own retries are off (``max_retries=0``): the engine retries transient errors with its
backoff, so a run's retry count means what it says. Every request carries the step's timeout;
the SDK's HTTP client lets Stop (and the step's deadline) interrupt a call even while the
server is silent, and the stream is read event by event so people watching the run see
progress every couple of seconds.

A task list or jury score cut off by ``max_tokens`` is never used (the SDK would hand back the
part that arrived, e.g. 2 tasks of 5): it is asked again with twice the limit once, then the
step fails naming RUNWAY_ANTHROPIC_MAX_TOKENS. A cut-off document is kept and marked truncated.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import anthropic
from django.conf import settings

from config.env import env_optional
from pipeline.providers import errors, interrupt, structured
from pipeline.providers.base import (
    PermanentProviderError,
    StepCancelled,
    StepOutput,
    StepRequest,
    Usage,
)

LABEL = "Anthropic"
KEY_VARIABLE = "ANTHROPIC_API_KEY"
LIMIT_VARIABLE = "RUNWAY_ANTHROPIC_MAX_TOKENS"
# How often a long generation reports progress in the run's log.
PROGRESS_EVERY_SECONDS = 2.0


@functools.lru_cache(maxsize=4)
def _client(api_key: str, base_url: str | None) -> anthropic.Anthropic:
    # One client per key and URL per process; its HTTP client lets Stop interrupt a call.
    return anthropic.Anthropic(
        api_key=api_key, base_url=base_url, max_retries=0, http_client=interrupt.http_client()
    )


class AnthropicProvider:
    name = "anthropic"
    # Calls go through the shared per-workspace slots (pipeline.limits).
    concurrency_limited = True

    def default_model(self) -> str:
        return str(settings.RUNWAY_ANTHROPIC_MODEL)

    def client(self) -> anthropic.Anthropic:
        api_key = env_optional(KEY_VARIABLE)
        if not api_key:
            raise errors.missing_key(LABEL, self.name, KEY_VARIABLE)
        return _client(api_key, env_optional("ANTHROPIC_BASE_URL") or None)

    def generate(self, request: StepRequest) -> StepOutput:
        client = self.client()
        model = request.model or self.default_model()
        usage = Usage()
        messages: list[dict[str, Any]] = [{"role": "user", "content": request.prompt}]
        output = request.output if structured.is_structured(request.output) else None
        limit = int(settings.RUNWAY_ANTHROPIC_MAX_TOKENS)
        repaired = raised = False
        while True:
            message = self._stream(client, request, model, messages, output, usage, limit)
            if message.stop_reason == "refusal":
                raise PermanentProviderError(
                    f"Claude ({model}) declined to answer this step (stop_reason refusal). "
                    "Rephrase the card's description or the skill's prompt, then Retry."
                )
            cut_off = message.stop_reason == "max_tokens"
            if output is None:
                text = _text_of(message)
                if not text.strip():
                    raise PermanentProviderError(
                        f"Claude ({model}) returned an empty document for {request.skill_slug}. "
                        "Check the skill's prompt, then Retry."
                    )
                if cut_off:
                    request.on_log(
                        f"The answer hit the {limit}-token limit ({LIMIT_VARIABLE}) and may be "
                        "cut short; it is stored and marked truncated"
                    )
                return StepOutput(text=text, usage=usage, truncated=cut_off)
            if cut_off:
                if raised:
                    raise PermanentProviderError(
                        f"Claude's {output} answer for {request.skill_slug} was cut off at the "
                        f"{limit}-token limit twice (stop_reason max_tokens), so nothing was "
                        f"made from it. Raise {LIMIT_VARIABLE}, then Retry."
                    )
                raised, limit = True, 2 * limit
                request.on_log(
                    f"Claude's {output} answer was cut off at the output limit "
                    f"(stop_reason max_tokens); asking again with max_tokens {limit}"
                )
                continue
            tool_name = structured.TOOL_NAMES[output]
            block = next(
                (b for b in message.content if b.type == "tool_use" and b.name == tool_name), None
            )
            try:
                if block is None:
                    why = getattr(message, "error", "") or f"no call to the {tool_name} tool"
                    raise structured.InvalidOutput(why)
                data = structured.validate(output, block.input)
            except structured.InvalidOutput as exc:
                if repaired:
                    raise PermanentProviderError(
                        f"Claude's {output} output for {request.skill_slug} was still invalid "
                        f"after one repair: {exc}. Adjust the skill's prompt or the model, "
                        "then Retry."
                    ) from None
                repaired = True
                request.on_log(f"Output did not match the {output} schema ({exc}); asking once")
                messages = [*messages, *self._repair_turns(message, block, output, str(exc))]
                continue
            return structured.to_output(output, data, usage)

    def _repair_turns(
        self, message: Any, block: Any, output: str, error: str
    ) -> list[dict[str, Any]]:
        tool_name = structured.TOOL_NAMES[output]
        if block is None:
            return [
                {"role": "assistant", "content": _text_of(message) or "(no answer)"},
                {
                    "role": "user",
                    "content": f"{structured.repair_prompt(output, error)} "
                    f"Call the {tool_name} tool.",
                },
            ]
        return [
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": block.id,
                        "is_error": True,
                        "content": f"{structured.repair_prompt(output, error)} "
                        f"Call {tool_name} again with corrected input.",
                    }
                ],
            },
        ]

    def _stream(
        self,
        client: anthropic.Anthropic,
        request: StepRequest,
        model: str,
        messages: list[dict[str, Any]],
        output: str | None,
        usage: Usage,
        limit: int,
    ) -> Any:
        extra: dict[str, Any] = {}
        if output is not None:
            tool_name = structured.TOOL_NAMES[output]
            extra["tools"] = [
                {
                    "name": tool_name,
                    "description": structured.TOOL_DESCRIPTIONS[output],
                    "input_schema": structured.schema(output),
                }
            ]
            extra["tool_choice"] = {"type": "tool", "name": tool_name}
        started = time.monotonic()
        last_report = started
        received = 0
        with interrupt.interruptible(request.cancelled, request.timeout_seconds) as call:
            try:
                with client.messages.stream(
                    model=model,
                    max_tokens=limit,
                    messages=messages,  # type: ignore[arg-type]
                    timeout=float(request.timeout_seconds),
                    **extra,
                ) as stream:
                    for event in stream:
                        if request.cancelled.is_set():
                            raise StepCancelled
                        if event.type == "content_block_delta":
                            delta = event.delta
                            received += len(getattr(delta, "text", "") or "")
                            received += len(getattr(delta, "partial_json", "") or "")
                        now = time.monotonic()
                        if now - last_report >= PROGRESS_EVERY_SECONDS:
                            last_report = now
                            request.on_log(
                                f"{model}: received ≈{received // 4} tokens "
                                f"in {now - started:.0f} s"
                            )
                    message = stream.get_final_message()
            except StepCancelled:
                raise
            except Exception as exc:
                call.check(LABEL)
                mapped = errors.from_sdk(
                    anthropic,
                    exc,
                    label=LABEL,
                    key_variable=KEY_VARIABLE,
                    model=model,
                    where=str(client.base_url),
                    timeout_seconds=request.timeout_seconds,
                )
                if mapped is not None:
                    raise mapped from None
                if not isinstance(exc, ValueError):
                    raise
                # The SDK could not parse the tool input JSON the model streamed: let the
                # caller treat it as invalid output (one repair), by returning no tool call.
                request.on_log(f"Unreadable tool input from {model}: {str(exc)[:200]}")
                return _Unreadable(str(exc))
            call.check(LABEL)
        if message.stop_reason is None:
            raise errors.stream_ended_early(LABEL)
        _count(message, usage)
        return message


def _count(message: Any, usage: Usage) -> None:
    """Add a call's usage to the step's; a call that reported none makes its cost unknown."""
    counted = getattr(message, "usage", None)
    input_tokens = getattr(counted, "input_tokens", None) or 0
    output_tokens = getattr(counted, "output_tokens", None) or 0
    if not (input_tokens or output_tokens):
        usage.reported = False
        return
    usage.input_tokens += input_tokens
    usage.output_tokens += output_tokens
    usage.cache_read_tokens += getattr(counted, "cache_read_input_tokens", None) or 0
    usage.cache_write_tokens += getattr(counted, "cache_creation_input_tokens", None) or 0


class _Unreadable:
    """Stands in for a message whose tool input could not be parsed."""

    stop_reason = "tool_use"

    def __init__(self, error: str) -> None:
        self.content: list[Any] = []
        self.error = error


def _text_of(message: Any) -> str:
    return "".join(getattr(b, "text", "") for b in getattr(message, "content", []))
