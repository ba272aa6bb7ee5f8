"""Turn what a remote LLM answered into the engine's two kinds of failure.

Transient (retried with backoff by the engine): rate limits, overload, server errors, timeouts,
dropped connections, an error event inside a stream. Permanent (the run fails at once): bad
credentials, refused permissions, unknown models, bad requests, refusals, output still invalid
after one repair. Messages quote the server and say what to do next.

Both SDKs (anthropic, openai) raise the same family of exceptions (APIStatusError with the
HTTP status and the parsed error body, APITimeoutError, APIConnectionError, and APIError for an
error event inside a stream); `from_sdk` maps either, given the SDK module.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import httpx2

from pipeline.providers.base import PermanentProviderError, ProviderError, TransientProviderError
from pipeline.storable import storable_text

# Error "types" a server may send inside an otherwise successful (200) event stream.
TRANSIENT_ERROR_TYPES = {"overloaded_error", "rate_limit_error", "api_error", "timeout_error"}
# Words in an error's code or type (OpenAI-compatible servers send text codes such as
# "rate_limit_exceeded") that say what kind of failure it is.
_RATE_LIMIT_WORDS = ("rate_limit", "rate limit", "too_many_requests", "too many requests")
_OVERLOAD_WORDS = ("overloaded", "overload", "capacity", "unavailable")
_PERMANENT_CODES = {
    "invalid_api_key": 401,
    "authentication_error": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "model_not_found": 404,
    "not_found_error": 404,
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "insufficient_quota": 402,
    "billing_error": 402,
}
DETAIL_CHARS = 300


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` / `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def from_status(
    *,
    label: str,
    status: int,
    detail: str,
    key_variable: str,
    model: str,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """The engine's error for an HTTP status (or an error event) from `label` (e.g. "Anthropic").

    `detail` is the server's own message, quoted (made storable, one line, 300 characters).
    """
    detail = storable_text(" ".join(detail.split()))[:DETAIL_CHARS]
    suffix = f": {detail}" if detail else ""
    retry_after = retry_after_seconds(headers)
    if error_type == "insufficient_quota":
        # OpenAI answers 429 for an exhausted quota: waiting does not refill it.
        status = 402
    if status == 401:
        return PermanentProviderError(
            f"{label} rejected the API key (401): set {key_variable} to a valid key "
            "for the workers and Retry."
        )
    if status == 403:
        return PermanentProviderError(
            f"{label} refused the request (403){suffix}. The API key may not be allowed to use "
            f"model {model!r}; check the key's permissions or change the recipe's model."
        )
    if status == 404:
        return PermanentProviderError(
            f"{label} answered 404 for model {model!r}{suffix}. Check the model name on the "
            "recipe, the workspace default model, or the provider's base URL."
        )
    if status == 429 or error_type == "rate_limit_error":
        return TransientProviderError(
            f"{label} rate limit reached (429){suffix}", retry_after=retry_after
        )
    if status == 529 or error_type == "overloaded_error":
        return TransientProviderError(
            f"{label} is overloaded (529){suffix}", retry_after=retry_after
        )
    if status in (408, 409) or status >= 500 or error_type in TRANSIENT_ERROR_TYPES:
        return TransientProviderError(
            f"{label} server error ({status}){suffix}", retry_after=retry_after
        )
    if status == 402:
        return PermanentProviderError(
            f"{label} refused the request for billing reasons (402){suffix}. "
            "Check the account's credits, then Retry."
        )
    return PermanentProviderError(
        f"{label} rejected the request ({status}){suffix}. Check the recipe's model and "
        "prompt and the server's settings, then Retry."
    )


def server_message(body: object, fallback: str = "") -> str:
    """The human part of an error body, whatever its shape: ``{"error": {"message"}}``,
    ``{"error": "text"}``, ``{"message"}``, ``{"detail"}``, plain text or JSON text."""
    if isinstance(body, str | bytes):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        try:
            parsed = json.loads(text)
        except ValueError:
            return text.strip() or fallback
        return server_message(parsed, fallback) if isinstance(parsed, dict) else text.strip()
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping | str):
            return server_message(error, fallback)
        for key in ("message", "detail", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if value:
                return json.dumps(value, default=str)
    return fallback


def _code_of(body: object) -> tuple[int | None, str]:
    """(numeric status, lower-case code and type words) from an error body."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if not isinstance(body, Mapping):
        return None, ""
    status: int | None = None
    words: list[str] = []
    for key in ("code", "status", "type"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            status = status or value
        elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) == 3:
            status = status or int(value)
        elif isinstance(value, str):
            words.append(value.lower())
    return status, " ".join(words)


def from_stream_error(
    *, label: str, body: object, key_variable: str, model: str, fallback: str = ""
) -> ProviderError:
    """An error event inside a 200 stream: its code may be a number, a text code
    (``"rate_limit_exceeded"``), a type, or absent (``{"error": "some text"}``).

    A recognised permanent code fails at once; anything else is the server failing midway,
    retried like a 5xx (the step's retry count bounds what that costs).
    """
    message = server_message(body, fallback) or "error event in the stream"
    status, words = _code_of(body)
    lowered = f"{words} {message.lower()}"
    if status is None:
        for code, mapped in _PERMANENT_CODES.items():
            if code in words:
                status = mapped
                break
    if status is None and any(w in lowered for w in _RATE_LIMIT_WORDS):
        status = 429
    elif status is None and any(w in lowered for w in _OVERLOAD_WORDS):
        status = 529
    error_type = "insufficient_quota" if "insufficient_quota" in words else None
    return from_status(
        label=label,
        status=status or 500,
        detail=message,
        key_variable=key_variable,
        model=model,
        error_type=error_type,
    )


def from_sdk(
    sdk: ModuleType,
    exc: BaseException,
    *,
    label: str,
    key_variable: str,
    model: str,
    where: str,
    timeout_seconds: float,
) -> ProviderError | None:
    """The engine's error for an exception raised by `sdk` (the anthropic or openai module)
    or by httpx underneath it; None for an exception that is none of those."""
    if isinstance(exc, sdk.APITimeoutError | httpx2.TimeoutException):
        return timed_out(label, timeout_seconds)
    if isinstance(exc, sdk.APIConnectionError | httpx2.TransportError):
        return unreachable(label, where, exc.__cause__ or exc)
    if isinstance(exc, sdk.APIStatusError) and exc.status_code >= 400:
        body = exc.body
        _, words = _code_of(body)
        quota = "insufficient_quota" in words or getattr(exc, "code", None) == "insufficient_quota"
        return from_status(
            label=label,
            status=exc.status_code,
            detail=server_message(body, exc.response.text if _readable(exc.response) else ""),
            key_variable=key_variable,
            model=model,
            error_type="insufficient_quota" if quota else getattr(exc, "type", None),
            headers=exc.response.headers,
        )
    if isinstance(exc, sdk.APIResponseValidationError):
        return unreadable(label, exc.message)
    if isinstance(exc, sdk.APIError):  # an error event inside a stream (status 200)
        return from_stream_error(
            label=label,
            body=exc.body,
            key_variable=key_variable,
            model=model,
            fallback=exc.message,
        )
    if isinstance(exc, json.JSONDecodeError):
        return unreadable(label, f"a stream event that is not JSON ({exc.msg})")
    return None


def _readable(response: Any) -> bool:
    try:
        return bool(response.is_stream_consumed or not response.is_closed)
    except AttributeError:
        return False


def timed_out(label: str, seconds: float) -> TransientProviderError:
    return TransientProviderError(
        f"{label} did not answer within the step's timeout of {seconds:g} s"
    )


def unreachable(label: str, where: str, why: object) -> TransientProviderError:
    reason = storable_text(" ".join(str(why).split()))[:DETAIL_CHARS] or type(why).__name__
    return TransientProviderError(f"Could not reach {label} at {where}: {reason}")


def unreadable(label: str, why: str) -> TransientProviderError:
    reason = storable_text(" ".join(why.split()))[:DETAIL_CHARS]
    return TransientProviderError(f"{label} sent an answer that could not be read: {reason}")


def stream_ended_early(label: str) -> TransientProviderError:
    return TransientProviderError(
        f"{label} closed the stream before the answer was complete (no stop reason)"
    )


def missing_key(label: str, provider: str, variable: str) -> PermanentProviderError:
    return PermanentProviderError(
        f"The {provider} provider needs an API key: set {variable} (or {variable}_FILE) in the "
        f"workers' environment, or set the workspace's default provider back to offline. "
        f"({label} was not called.)"
    )
