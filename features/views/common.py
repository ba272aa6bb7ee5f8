"""What the board's views share: typed htmx requests, toasts, and card/column responses."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django_htmx.middleware import HtmxDetails

from features import queries
from features.models import Feature, Membership, Workspace


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


def render_card(
    request: HttpRequest, workspace: Workspace, membership: Membership, feature_id: int
) -> str:
    card = queries.card_for_render(workspace, feature_id)
    if card is None:
        return ""
    return render_to_string(
        "features/board.html#card",
        {"card": card, "membership": membership, "workspace": workspace},
        request=request,
    )


def card_response(
    request: HttpRequest, feature: Feature, membership: Membership, *, status: int = 200
) -> HttpResponse:
    return HttpResponse(
        render_card(request, feature.workspace, membership, feature.pk), status=status
    )
