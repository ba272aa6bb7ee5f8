"""The workspace list and the board page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from features.access import get_workspace, workspaces_for
from features.views.common import HtmxHttpRequest
from pipeline import card_queries as queries
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
    workspace, membership = get_workspace(request.user, slug)
    context = {
        "workspace": workspace,
        "membership": membership,
        "workspaces": workspaces_for(request.user).order_by("name"),
        "kinds": KIND_CHOICES,
        **queries.board_page(workspace),
    }
    # A reconnecting page asks for the board body again: a missed event never leaves it wrong.
    template = "features/board.html#board-body" if request.htmx else "features/board.html"
    return render(request, template, context)


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
