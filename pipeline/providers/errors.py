"""Turn what a remote LLM answered into the engine's two kinds of failure.

Transient (retried with backoff by the engine): rate limits, overload, server errors, timeouts,
dropped connections. Permanent (the run fails at once): bad credentials, refused permissions,
bad requests, refusals, output still invalid after one repair. Messages say what to do next.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from pipeline.providers.base import PermanentProviderError, ProviderError, TransientProviderError

# Error "types" a server may send inside an otherwise successful (200) event stream.
TRANSIENT_ERROR_TYPES = {"overloaded_error", "rate_limit_error", "api_error", "timeout_error"}


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
    """The engine's error for an HTTP status (or an error event) from `label` (e.g. "Anthropic")."""
    detail = " ".join(detail.split())[:300]
    suffix = f": {detail}" if detail else ""
    retry_after = retry_after_seconds(headers)
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
        f"{label} rejected the request ({status}){suffix}. Fix the recipe (model, prompt) "
        "and Retry."
    )


def timed_out(label: str, seconds: float) -> TransientProviderError:
    return TransientProviderError(
        f"{label} did not answer within the step's timeout of {seconds:g} s"
    )


def unreachable(label: str, where: str, why: object) -> TransientProviderError:
    return TransientProviderError(f"Could not reach {label} at {where}: {why}")


def missing_key(label: str, provider: str, variable: str) -> PermanentProviderError:
    return PermanentProviderError(
        f"The {provider} provider needs an API key: set {variable} (or {variable}_FILE) in the "
        f"workers' environment, or set the workspace's default provider back to offline. "
        f"({label} was not called.)"
    )
