"""Any OpenAI-compatible chat-completions server (OpenAI, Ollama, vLLM, llama.cpp's server,
LM Studio, OpenRouter) through the official ``openai`` SDK.

The SDK reads the event stream (multi-line events, any character inside model text, error
events); what is ours is the mapping of its exceptions and finish reasons onto the engine's
outcomes (see ``errors``), and what this provider does about servers that differ:

* a server that rejects an optional parameter (``stream_options``, ``response_format``,
  ``max_tokens``) is asked again without it, once, and the log says so; the process then stops
  sending it to that server;
* a server that answers a streaming request with one plain JSON body is read as that body;
* a stream that reports no usage leaves the step's cost unknown (not $0);
* a structured answer cut off by the output limit (``finish_reason: length``) is never used:
  it is asked again with a higher ``max_tokens`` once, then the step fails naming the setting.

Base URL and key come from OPENAI_BASE_URL and OPENAI_API_KEY; local servers that need no key
accept any value, so a missing key is only an error when the base URL is OpenAI's own. The
SDK's own retries are off: the engine retries, so a step's retry count is exact.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any

import openai
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

LABEL = "The OpenAI-compatible server"
KEY_VARIABLE = "OPENAI_API_KEY"
LIMIT_VARIABLE = "RUNWAY_OPENAI_MAX_TOKENS"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PROGRESS_EVERY_SECONDS = 2.0
# Request parameters some compatible servers reject; each is dropped when a server does.
OPTIONAL_PARAMETERS = ("stream_options", "response_format", "max_tokens")
# What a cut-off structured answer is asked again with when no limit was set.
MIN_RAISED_LIMIT = 4096

# Base URL → the optional parameters its server rejected (this worker process's memory).
_rejected_by_server: dict[str, set[str]] = {}


@functools.lru_cache(maxsize=4)
def _client(api_key: str, base_url: str) -> openai.OpenAI:
    # One client per key and URL per process; its HTTP client lets Stop interrupt a call.
    return openai.OpenAI(
        api_key=api_key, base_url=base_url, max_retries=0, http_client=interrupt.http_client()
    )


@dataclass
class _Answer:
    text: str
    finish: str
    output_tokens: int


class _Rejected(Exception):
    """The server refused one of our optional parameters (400/422 naming it)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(parameter)
        self.parameter = parameter
        self.message = message


class OpenAICompatibleProvider:
    name = "openai"
    concurrency_limited = True

    def default_model(self) -> str:
        return str(settings.RUNWAY_OPENAI_MODEL)

    def client(self) -> tuple[openai.OpenAI, str]:
        base = (env_optional("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        key = env_optional(KEY_VARIABLE)
        if not key and base == DEFAULT_BASE_URL:
            raise errors.missing_key("OpenAI", self.name, KEY_VARIABLE)
        # Local servers ignore the key, but the SDK insists on one.
        return _client(key or "no-key-needed", base), base

    def generate(self, request: StepRequest) -> StepOutput:
        client, base = self.client()
        model = request.model or self.default_model()
        if not model:
            raise PermanentProviderError(
                "No model for the openai provider: set the recipe's or workspace's model, "
                "or RUNWAY_OPENAI_MODEL."
            )
        output = request.output if structured.is_structured(request.output) else None
        prompt = request.prompt + (structured.instructions(output) if output else "")
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
        usage = Usage()
        limit = int(settings.RUNWAY_OPENAI_MAX_TOKENS) or None
        repaired = raised = False
        while True:
            params: dict[str, Any] = {
                "model": model,
                "messages": messages,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            if output is not None:
                params["response_format"] = {"type": "json_object"}
            if limit:
                params["max_tokens"] = limit
            answer = self._call(client, base, request, model, params, usage)
            if answer.finish == "content_filter":
                raise PermanentProviderError(
                    f"{model} declined to answer this step (content filter). Rephrase the "
                    "card's description or the skill's prompt, then Retry."
                )
            if output is None:
                return _document(request, model, answer, usage)
            if answer.finish == "length":
                if raised:
                    raise PermanentProviderError(
                        f"{model}'s {output} answer for {request.skill_slug} was cut off at the "
                        f"output limit twice (finish_reason length, max_tokens {limit}), so "
                        f"nothing was made from it. Raise {LIMIT_VARIABLE} or the server's own "
                        "output limit (Ollama: num_predict), then Retry."
                    )
                raised = True
                limit = max(2 * (limit or answer.output_tokens), MIN_RAISED_LIMIT)
                request.on_log(
                    f"{model}'s {output} answer was cut off at the output limit "
                    f"(finish_reason length); asking again with max_tokens {limit}"
                )
                continue
            try:
                data = structured.validate(output, structured.parse_json_text(answer.text))
            except structured.InvalidOutput as exc:
                if repaired:
                    raise PermanentProviderError(
                        f"{model}'s {output} output for {request.skill_slug} was still invalid "
                        f"after one repair: {exc}. Adjust the skill's prompt or the model, "
                        "then Retry."
                    ) from None
                repaired = True
                request.on_log(f"Output did not match the {output} schema ({exc}); asking once")
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer.text},
                    {"role": "user", "content": structured.repair_prompt(output, str(exc))},
                ]
                continue
            return structured.to_output(output, data, usage)

    def _call(
        self,
        client: openai.OpenAI,
        base: str,
        request: StepRequest,
        model: str,
        params: dict[str, Any],
        usage: Usage,
    ) -> _Answer:
        """One answer; a rejected optional parameter is dropped and the request sent again."""
        rejected = _rejected_by_server.setdefault(base, set())
        while True:
            body = {k: v for k, v in params.items() if k not in rejected}
            try:
                return self._stream(client, base, request, model, body, usage)
            except _Rejected as refusal:
                rejected.add(refusal.parameter)
                request.on_log(
                    f"{LABEL} rejected the optional parameter {refusal.parameter} "
                    f"({refusal.message}); asking again without it"
                )

    def _stream(
        self,
        client: openai.OpenAI,
        base: str,
        request: StepRequest,
        model: str,
        body: dict[str, Any],
        usage: Usage,
    ) -> _Answer:
        started = time.monotonic()
        last_report = started
        parts: list[str] = []
        finish = ""
        counted: Any = None
        with interrupt.interruptible(request.cancelled, request.timeout_seconds) as call:
            try:
                stream = client.chat.completions.create(
                    **body, timeout=float(request.timeout_seconds)
                )
                with stream:
                    if _is_json(stream.response):
                        # The server ignored stream=true and sent the whole completion.
                        return _plain_answer(stream.response.read(), model, usage)
                    for chunk in stream:
                        if request.cancelled.is_set():
                            raise StepCancelled
                        for choice in chunk.choices or []:
                            delta = getattr(choice, "delta", None)
                            parts.append(getattr(delta, "content", None) or "")
                            finish = getattr(choice, "finish_reason", None) or finish
                        counted = getattr(chunk, "usage", None) or counted
                        now = time.monotonic()
                        if now - last_report >= PROGRESS_EVERY_SECONDS:
                            last_report = now
                            request.on_log(
                                f"{model}: received ≈{sum(map(len, parts)) // 4} tokens "
                                f"in {now - started:.0f} s"
                            )
            except StepCancelled:
                raise
            except Exception as exc:
                call.check(LABEL)
                raise _mapped(exc, base, model, body, request) from None
            call.check(LABEL)
        if not finish:
            raise errors.stream_ended_early(LABEL)
        output_tokens = _count(counted, usage)
        return _Answer("".join(parts), finish, output_tokens)


def _document(request: StepRequest, model: str, answer: _Answer, usage: Usage) -> StepOutput:
    if not answer.text.strip():
        raise PermanentProviderError(
            f"{model} returned an empty document for {request.skill_slug}. "
            "Check the skill's prompt and the server, then Retry."
        )
    truncated = answer.finish == "length"
    if truncated:
        request.on_log(
            f"The answer stopped at {model}'s output limit (finish_reason length) and may be "
            f"cut short; it is stored and marked truncated. Raise {LIMIT_VARIABLE} or the "
            "server's own limit to get all of it."
        )
    return StepOutput(text=answer.text, usage=usage, truncated=truncated)


def _mapped(
    exc: Exception, base: str, model: str, body: dict[str, Any], request: StepRequest
) -> Exception:
    if isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422):
        message = errors.server_message(exc.body, exc.message)
        param = getattr(exc, "param", None)
        for name in OPTIONAL_PARAMETERS:
            if name in body and (param == name or name in message):
                return _Rejected(name, " ".join(message.split())[: errors.DETAIL_CHARS])
    mapped = errors.from_sdk(
        openai,
        exc,
        label=LABEL,
        key_variable=KEY_VARIABLE,
        model=model,
        where=base,
        timeout_seconds=request.timeout_seconds,
    )
    return mapped if mapped is not None else exc


def _is_json(response: Any) -> bool:
    kind = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    return kind == "application/json"


def _plain_answer(raw: bytes, model: str, usage: Usage) -> _Answer:
    try:
        completion = json.loads(raw)
    except ValueError as exc:
        raise errors.unreadable(LABEL, f"a body that is not JSON ({exc})") from None
    if not isinstance(completion, dict):
        raise errors.unreadable(LABEL, "a JSON body that is not an object")
    if completion.get("error"):
        raise errors.from_stream_error(
            label=LABEL, body=completion, key_variable=KEY_VARIABLE, model=model
        )
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    text = message.get("content") if isinstance(message, dict) else None
    counted = completion.get("usage")
    output_tokens = _count(
        openai.types.CompletionUsage.model_construct(**counted)
        if isinstance(counted, dict)
        else None,
        usage,
    )
    return _Answer(str(text or ""), str(choice.get("finish_reason") or "stop"), output_tokens)


def _count(counted: Any, usage: Usage) -> int:
    """Add a call's usage to the step's; returns its output tokens (0 when not reported)."""
    if counted is None:
        usage.reported = False
        return 0
    output_tokens = int(getattr(counted, "completion_tokens", 0) or 0)
    usage.input_tokens += int(getattr(counted, "prompt_tokens", 0) or 0)
    usage.output_tokens += output_tokens
    details = getattr(counted, "prompt_tokens_details", None)
    if isinstance(details, dict):
        cached = details.get("cached_tokens")
    else:
        cached = getattr(details, "cached_tokens", None)
    usage.cache_read_tokens += int(cached or 0)
    return output_tokens
