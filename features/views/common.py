"""What every page view shares: typed htmx requests and toasts."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    user: User


def with_toast(
    response: HttpResponse,
    message: str,
    level: str = "info",
    *,
    triggers: dict[str, Any] | None = None,
    **extra: Any,
) -> HttpResponse:
    """Attach a toast the page shows (HX-Trigger), whether or not the response swaps anything."""
    events = {**(triggers or {}), "toast": {"message": message, "level": level, **extra}}
    response["HX-Trigger"] = json.dumps(events)
    return response
