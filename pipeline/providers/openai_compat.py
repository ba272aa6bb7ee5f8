"""Any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, llama.cpp, Ollama, OpenAI).

Streams the answer (progress in the run's log, cancel between chunks), asks for JSON mode for
structured outputs and validates them like the Anthropic provider, with one repair attempt.
Base URL and key come from OPENAI_BASE_URL and OPENAI_API_KEY; local servers that need no key
accept any value, so a missing key is only an error when the base URL is OpenAI's own.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
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

LABEL = "The OpenAI-compatible server"
KEY_VARIABLE = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PROGRESS_EVERY_SECONDS = 2.0


class OpenAICompatibleProvider:
    name = "openai"
    concurrency_limited = True

    def default_model(self) -> str:
        return str(settings.RUNWAY_OPENAI_MODEL)

    def _endpoint(self) -> tuple[str, dict[str, str]]:
        base = (env_optional("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        key = env_optional(KEY_VARIABLE)
        if not key and base == DEFAULT_BASE_URL:
            raise errors.missing_key("OpenAI", self.name, KEY_VARIABLE)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return f"{base}/chat/completions", headers

    def generate(self, request: StepRequest) -> StepOutput:
        url, headers = self._endpoint()
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
        for repair in (False, True):
            text, finish = self._stream(url, headers, request, model, messages, output, usage)
            if finish == "content_filter":
                raise PermanentProviderError(
                    f"{model} declined to answer this step (content filter). Rephrase the "
                    "card's description or the skill's prompt, then Retry."
                )
            if output is None:
                if not text.strip():
                    raise PermanentProviderError(
                        f"{model} returned an empty document for {request.skill_slug}. "
                        "Check the skill's prompt and the server, then Retry."
                    )
                return StepOutput(text=text, usage=usage)
            try:
                data = structured.validate(output, structured.parse_json_text(text))
            except structured.InvalidOutput as exc:
                if repair:
                    raise PermanentProviderError(
                        f"{model}'s {output} output for {request.skill_slug} was still invalid "
                        f"after one repair: {exc}. Adjust the skill's prompt or the model, "
                        "then Retry."
                    ) from None
                request.on_log(f"Output did not match the {output} schema ({exc}); asking once")
                messages += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": structured.repair_prompt(output, str(exc))},
                ]
                continue
            return structured.to_output(output, data, usage)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream(
        self,
        url: str,
        headers: dict[str, str],
        request: StepRequest,
        model: str,
        messages: list[dict[str, str]],
        output: str | None,
        usage: Usage,
    ) -> tuple[str, str]:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if output is not None:
            body["response_format"] = {"type": "json_object"}
        started = time.monotonic()
        deadline = started + request.timeout_seconds
        last_report = started
        parts: list[str] = []
        finish = ""
        try:
            with (
                httpx2.Client(timeout=float(request.timeout_seconds)) as client,
                client.stream("POST", url, json=body, headers=headers) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    raise errors.from_status(
                        label=LABEL,
                        status=response.status_code,
                        detail=_error_detail(response.text),
                        key_variable=KEY_VARIABLE,
                        model=model,
                        headers=response.headers,
                    )
                for line in response.iter_lines():
                    if request.cancelled.is_set():
                        raise StepCancelled
                    now = time.monotonic()
                    if now > deadline:
                        raise errors.timed_out(LABEL, request.timeout_seconds)
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    if chunk.get("error"):
                        raise errors.from_status(
                            label=LABEL,
                            status=int(chunk["error"].get("code") or 500),
                            detail=str(chunk["error"].get("message", "")),
                            key_variable=KEY_VARIABLE,
                            model=model,
                        )
                    for choice in chunk.get("choices") or []:
                        parts.append((choice.get("delta") or {}).get("content") or "")
                        finish = choice.get("finish_reason") or finish
                    counted = chunk.get("usage") or {}
                    if counted:
                        usage.input_tokens += int(counted.get("prompt_tokens") or 0)
                        usage.output_tokens += int(counted.get("completion_tokens") or 0)
                        cached = (counted.get("prompt_tokens_details") or {}).get("cached_tokens")
                        usage.cache_read_tokens += int(cached or 0)
                    if now - last_report >= PROGRESS_EVERY_SECONDS:
                        last_report = now
                        request.on_log(
                            f"{model}: received ≈{sum(map(len, parts)) // 4} tokens "
                            f"in {now - started:.0f} s"
                        )
        except httpx2.TimeoutException:
            raise errors.timed_out(LABEL, request.timeout_seconds) from None
        except httpx2.TransportError as exc:
            raise errors.unreachable(LABEL, url, exc) from None
        except json.JSONDecodeError as exc:
            raise errors.unreachable(LABEL, url, f"unreadable stream chunk ({exc})") from None
        return "".join(parts), finish


def _error_detail(text: str) -> str:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(error or text)[:300]
