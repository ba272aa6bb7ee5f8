"""The command palette's search (⌘K / Ctrl-K on the board): cards matching a title or `#id`,
each with the actions the asking member may run on it. JSON, read only: the actions are the
board's own endpoints, which check access again when the palette calls them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from features.access import get_workspace
from features.models import Feature, Stage
from features.views.common import HtmxHttpRequest
from pipeline.board_filters import CARD_REF, clean_query
from pipeline.models import Run

RESULTS = 12


@login_required
@require_GET
def palette_search(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """{"cards": [{id, title, kind, stage, archived, actions: [{label, url, method, stage?}]}]}
    for up to 12 unarchived cards whose title contains `q` or whose id it names, newest first."""
    workspace, membership = get_workspace(request.user, slug)
    q = clean_query(request.GET.get("q", ""))
    cards = Feature.objects.filter(workspace=workspace, archived_at__isnull=True).select_related(
        "stage"
    )
    if q:
        ref = CARD_REF.match(q)
        cards = cards.filter(pk=int(ref.group(1))) if ref else cards.filter(title__icontains=q)
    found = list(cards.order_by("-pk")[:RESULTS])
    active = set(
        Run.objects.filter(
            feature__in=[c.pk for c in found], status__in=Run.ACTIVE_STATUSES
        ).values_list("feature_id", flat=True)
    )
    stages = list(Stage.objects.filter(workspace=workspace).order_by("board", "position"))
    return JsonResponse(
        {
            "cards": [
                _entry(card, stages, can_write=membership.can_write, running=card.pk in active)
                for card in found
            ]
        }
    )


def _entry(card: Feature, stages: list[Stage], *, can_write: bool, running: bool) -> dict[str, Any]:
    url = reverse("features:detail", args=[card.pk])
    actions: list[dict[str, Any]] = []
    if can_write:
        if running:
            actions.append({"label": "Stop", "url": f"{url}stop", "method": "POST"})
        else:
            actions.append({"label": "Launch", "url": f"{url}launch", "method": "POST"})
    actions.append({"label": "Open", "url": url, "method": "GET"})
    if can_write:
        move = reverse("features:move", args=[card.pk])
        actions += [
            {"label": f"Move to {s.name}", "url": move, "method": "POST", "stage": s.pk}
            for s in stages
            if s.board == card.stage.board and s.pk != card.stage_id
        ]
    return {
        "id": card.pk,
        "title": card.title,
        "kind": card.get_kind_display(),
        "stage": card.stage.name,
        "actions": actions,
    }
