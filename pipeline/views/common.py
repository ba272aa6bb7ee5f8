"""Card and column responses: a card rendered with its runs, as the board shows it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from features.models import Feature, Membership, Workspace
from pipeline import card_queries as queries


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


def panel_response(
    request: HttpRequest, feature: Feature, membership: Membership, *, status: int = 200
) -> HttpResponse:
    """The card page's live panel (pipeline/card_live.html), as the card now is."""
    from pipeline.card_live import panel_context

    fresh = Feature.objects.select_related("workspace").get(pk=feature.pk)
    html = render_to_string(
        "pipeline/card_live.html#panel", panel_context(fresh, membership), request=request
    )
    return HttpResponse(html, status=status)
