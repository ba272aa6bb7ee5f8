"""Pages of the board. Views are thin: check access, read, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from features import queries
from features.access import get_feature, get_workspace, workspaces_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    workspaces = list(workspaces_for(request.user).order_by("name"))
    if len(workspaces) == 1:
        return redirect("features:board", slug=workspaces[0].slug)
    return render(request, "features/home.html", {"workspaces": workspaces})


@login_required
def board(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    context = {
        "workspace": workspace,
        "membership": membership,
        "columns": queries.board_columns(workspace),
        "workspaces": workspaces_for(request.user).order_by("name"),
    }
    return render(request, "features/board.html", context)


@login_required
def feature_detail(request: HttpRequest, pk: int) -> HttpResponse:
    feature, membership = get_feature(request.user, pk)
    return render(
        request,
        "features/detail.html",
        {"feature": feature, "membership": membership, **queries.feature_page(feature)},
    )
