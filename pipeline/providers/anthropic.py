"""Claude through the official SDK: streaming, tool use for structured output, usage for cost.

The SDK's own retries are off (``max_retries=0``): the engine retries transient errors with its
backoff, so a run's retry count means what it says. Every request carries the step's timeout,
and the stream is read event by event so a cancelled run stops at once and people watching the
run see progress every couple of seconds.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import anthropic
from django.conf import settings

from config.env import env_optional
from pipeline.providers import errors, structured
from pipeline.providers.base import (
    PermanentProviderError,
    StepCancelled,
    StepOutput,
    StepRequest,
    Usage,
)

LABEL = "Anthropic"
KEY_VARIABLE = "ANTHROPIC_API_KEY"
# How often a long generation reports progress in the run's log.
PROGRESS_EVERY_SECONDS = 2.0


@functools.lru_cache(maxsize=4)
def _client(api_key: str, base_url: str | None) -> anthropic.Anthropic:
    # One client per key and URL per process keeps its connection pool warm between steps.
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0)


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
        for repair in (False, True):
            message = self._stream(client, request, model, messages, output, usage)
            if message.stop_reason == "refusal":
                raise PermanentProviderError(
                    f"Claude ({model}) declined to answer this step (stop_reason refusal). "
                    "Rephrase the card's description or the skill's prompt, then Retry."
                )
            if output is None:
                text = "".join(b.text for b in message.content if b.type == "text")
                if message.stop_reason == "max_tokens":
                    request.on_log(
                        f"The answer hit the {settings.RUNWAY_ANTHROPIC_MAX_TOKENS}-token limit "
                        "(RUNWAY_ANTHROPIC_MAX_TOKENS) and may be cut short"
                    )
                if not text.strip():
                    raise PermanentProviderError(
                        f"Claude ({model}) returned an empty document for {request.skill_slug}. "
                        "Check the skill's prompt, then Retry."
                    )
                return StepOutput(text=text, usage=usage)
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
                if repair:
                    raise PermanentProviderError(
                        f"Claude's {output} output for {request.skill_slug} was still invalid "
                        f"after one repair: {exc}. Adjust the skill's prompt or the model, "
                        "then Retry."
                    ) from None
                request.on_log(f"Output did not match the {output} schema ({exc}); asking once")
                messages.extend(self._repair_turns(message, block, output, str(exc)))
                continue
            return structured.to_output(output, data, usage)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

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
        deadline = started + request.timeout_seconds
        last_report = started
        received = 0
        try:
            with client.messages.stream(
                model=model,
                max_tokens=int(settings.RUNWAY_ANTHROPIC_MAX_TOKENS),
                messages=messages,  # type: ignore[arg-type]
                timeout=float(request.timeout_seconds),
                **extra,
            ) as stream:
                for event in stream:
                    if request.cancelled.is_set():
                        raise StepCancelled
                    now = time.monotonic()
                    if now > deadline:
                        raise errors.timed_out(LABEL, request.timeout_seconds)
                    if event.type == "content_block_delta":
                        delta = event.delta
                        received += len(getattr(delta, "text", "") or "")
                        received += len(getattr(delta, "partial_json", "") or "")
                    if now - last_report >= PROGRESS_EVERY_SECONDS:
                        last_report = now
                        request.on_log(
                            f"{model}: received ≈{received // 4} tokens in {now - started:.0f} s"
                        )
                message = stream.get_final_message()
        except anthropic.APITimeoutError:
            raise errors.timed_out(LABEL, request.timeout_seconds) from None
        except anthropic.APIConnectionError as exc:
            raise errors.unreachable(LABEL, str(client.base_url), exc) from None
        except anthropic.APIStatusError as exc:
            raise errors.from_status(
                label=LABEL,
                status=exc.status_code,
                detail=exc.api_message or exc.message,
                key_variable=KEY_VARIABLE,
                model=model,
                error_type=exc.type,
                headers=exc.response.headers,
            ) from None
        except ValueError as exc:
            # The SDK could not parse the tool input JSON the model streamed: let the caller
            # treat it as invalid output (one repair), by returning no tool call.
            request.on_log(f"Unreadable tool input from {model}: {str(exc)[:200]}")
            return _Unreadable(str(exc))
        counted = message.usage
        usage.input_tokens += counted.input_tokens or 0
        usage.output_tokens += counted.output_tokens or 0
        usage.cache_read_tokens += counted.cache_read_input_tokens or 0
        usage.cache_write_tokens += counted.cache_creation_input_tokens or 0
        return message


class _Unreadable:
    """Stands in for a message whose tool input could not be parsed."""

    stop_reason = "tool_use"

    def __init__(self, error: str) -> None:
        self.content: list[Any] = []
        self.error = error


def _text_of(message: Any) -> str:
    return "".join(getattr(b, "text", "") for b in getattr(message, "content", []))
