"""Archive a card (and its subtree) from the board or the card page, or bring it back.

Members who can edit may archive; viewers get 403 and outsiders 404 (features.access). The
rule for active runs is the engine's (pipeline.engine.archiving): refused, with the reason.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from features.access import get_feature
from features.views.common import HtmxHttpRequest, with_toast
from pipeline.engine.archiving import RunInProgress, archive_card, unarchive_card
from pipeline.views.cards import render_columns


@login_required
@require_POST
def archive(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _set_archived(request, pk, archived=True)


@login_required
@require_POST
def unarchive(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _set_archived(request, pk, archived=False)


def _set_archived(request: HtmxHttpRequest, pk: int, *, archived: bool) -> HttpResponse:
    feature, membership = get_feature(request.user, pk, write=True)
    try:
        changed = (archive_card if archived else unarchive_card)(feature, request.user)
    except RunInProgress as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect("features:detail", pk=pk)
        return with_toast(HttpResponse(status=409), str(exc), "error")
    others = f" and {changed - 1} card{'s' if changed != 2 else ''} below it" if changed > 1 else ""
    message = f"“{feature.title}”{others} {'archived' if archived else 'back on the board'}"
    if not request.htmx:
        messages.success(request, message)
        return redirect("features:detail", pk=pk)
    # The board: the card leaves (or rejoins) its column; the page's filters decide the rest.
    html = render_columns(request, feature.workspace, membership, {feature.stage_id})
    return with_toast(HttpResponse(html), message, "success", triggers={"boardChanged": True})
