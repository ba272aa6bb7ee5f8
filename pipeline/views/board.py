"""The workspace list, the board page and its "Show more"."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from features.access import get_workspace, workspaces_for
from features.models import Feature
from features.views.common import HtmxHttpRequest
from pipeline import card_queries as queries
from pipeline.board_filters import BoardFilters
from pipeline.views.cards import KIND_CHOICES


@login_required
@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    workspaces = list(workspaces_for(request.user).order_by("name"))
    if len(workspaces) == 1:
        return redirect("features:board", slug=workspaces[0].slug)
    return render(request, "features/home.html", {"workspaces": workspaces})


@login_required
@require_GET
def board(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Both boards, narrowed by the filters in the query string (see board_filters)."""
    workspace, membership = get_workspace(request.user, slug)
    stages = queries.workspace_stages(workspace)
    filters = BoardFilters.from_query(request.GET, stages)
    context = {
        "workspace": workspace,
        "membership": membership,
        "kinds": KIND_CHOICES,
        "all_kinds": Feature.Kind.choices,
        "statuses": Feature.Status.choices,
        "filters_qs": filters.query_string(),
        **queries.board_page(workspace, filters, stages=stages),
    }
    # A reconnecting page (or a changed filter) asks for the board body again: a missed
    # event never leaves it wrong.
    template = "features/board.html#board-body" if request.htmx else "features/board.html"
    return render(request, template, context)


@login_required
@require_GET
def column_more(request: HtmxHttpRequest, slug: str, stage_id: int) -> HttpResponse:
    """A column's next cards ("Show more"), under the page's filters; `offset` is how many
    the page holds already."""
    workspace, membership = get_workspace(request.user, slug)
    stages = queries.workspace_stages(workspace)
    stage = next((s for s in stages if s.pk == stage_id), None)
    if stage is None:
        raise Http404("No such column on this board.")
    offset = request.GET.get("offset", "0")
    if not offset.isdigit() or len(offset) > 9:
        return HttpResponse("offset must be a whole number of cards.", status=400)
    filters = BoardFilters.from_query(request.GET, stages)
    column, cards = queries.column_more(workspace, stage, filters, int(offset))
    return render(
        request,
        "features/board.html#more-cards",
        {
            "workspace": workspace,
            "membership": membership,
            "column": column,
            "cards": cards,
            "filters_qs": filters.query_string(),
        },
    )


@login_required
@require_GET
def worker_banner(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The "no worker" banner, polled; cards whose worker was lost come along out of band."""
    workspace, membership = get_workspace(request.user, slug)
    return render(
        request,
        "features/board.html#worker-poll",
        {
            "workspace": workspace,
            "membership": membership,
            "worker_alive": queries.worker_alive(),
            "lost_cards": queries.lost_cards(workspace),
        },
    )
