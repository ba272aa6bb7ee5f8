"""The "Runs & workers" page's bulk panel: count the runs a filter matches, confirm the action
with that count, then watch the job (its fragment polls itself while the job is active).

Owners and admins only; every refusal says why (a toast, or the panel re-rendered)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from features.access import get_workspace
from features.models import Workspace
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import bulk
from pipeline.bulk.filters import FIELDS
from pipeline.models import BulkAction

TEMPLATE = "pipeline/runs.html"


def _admins_only(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """A member or viewer gets a 403 that says why (as text and as a toast)."""

    @functools.wraps(view)
    def wrapped(request: HtmxHttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
        try:
            get_workspace(request.user, slug, admin=True)
        except PermissionDenied as exc:
            message = str(exc)
            response = HttpResponse(message, status=403, content_type="text/plain")
            return with_toast(response, message, "error")
        return view(request, slug, **kwargs)

    return wrapped


def _raw(params: Any) -> dict[str, str]:
    return {name: params.get(name, "") for name in FIELDS}


def _refused(message: str) -> HttpResponse:
    """A 400 the panel reports as a toast; the form stays as the operator filled it."""
    return with_toast(
        HttpResponse(message, status=400, content_type="text/plain"), message, "error"
    )


def _preview_response(
    request: HtmxHttpRequest, workspace: Workspace, preview: bulk.Preview, *, status: int = 200
) -> HttpResponse:
    context = {"workspace": workspace, "preview": preview, "hidden": preview.filter.as_dict()}
    return render(request, f"{TEMPLATE}#bulk-preview", context, status=status)


@login_required
@require_GET
@never_cache
@_admins_only
def bulk_preview(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The dry run: how many runs the action would act on, and the newest of them."""
    workspace, _ = get_workspace(request.user, slug, admin=True)
    try:
        action = bulk.parse_action(request.GET.get("action"))
        run_filter = bulk.parse_filter(_raw(request.GET), workspace, action)
    except bulk.BadFilter as exc:
        return _refused(exc.message)
    return _preview_response(request, workspace, bulk.preview(workspace, action, run_filter))


@login_required
@require_POST
@_admins_only
def bulk_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start the job the operator confirmed; if the count moved, show the new count instead."""
    workspace, _ = get_workspace(request.user, slug, admin=True)
    try:
        action = bulk.parse_action(request.POST.get("action"))
        run_filter = bulk.parse_filter(_raw(request.POST), workspace, action)
        expected = int(request.POST.get("expected_count", ""))
    except bulk.BadFilter as exc:
        return _refused(exc.message)
    except ValueError:
        return _refused("Count the matching runs first, then confirm that count.")
    try:
        job = bulk.start_bulk_action(
            workspace, request.user, action, run_filter, expected_count=expected, source="web"
        )
    except bulk.CountChanged as exc:
        # 409 swaps: the panel shows the new count to confirm, and says why.
        fresh = bulk.preview(workspace, action, run_filter)
        response = _preview_response(request, workspace, fresh, status=409)
        return with_toast(response, exc.message, "error")
    except bulk.BadFilter as exc:
        return _refused(exc.message)
    response = render(request, f"{TEMPLATE}#bulk-job", {"workspace": workspace, "job": job})
    message = f"Bulk {job.action} of {job.total} run{'s' if job.total != 1 else ''} started"
    return with_toast(response, message, "success")


def _job_in(workspace: Workspace, pk: int) -> BulkAction:
    return get_object_or_404(BulkAction.objects.select_related("actor"), pk=pk, workspace=workspace)


@login_required
@require_GET
@never_cache
@_admins_only
def bulk_job(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """One job's progress; polled by its own fragment until it ends."""
    workspace, _ = get_workspace(request.user, slug, admin=True)
    job = _job_in(workspace, pk)
    return render(request, f"{TEMPLATE}#bulk-job", {"workspace": workspace, "job": job})


@login_required
@require_POST
@_admins_only
def bulk_cancel(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, _ = get_workspace(request.user, slug, admin=True)
    job = _job_in(workspace, pk)
    try:
        job = bulk.cancel_bulk_action(job, request.user)
    except bulk.BulkError as exc:
        response = render(request, f"{TEMPLATE}#bulk-job", {"workspace": workspace, "job": job})
        response.status_code = 409
        return with_toast(response, exc.message, "error")
    response = render(request, f"{TEMPLATE}#bulk-job", {"workspace": workspace, "job": job})
    return with_toast(response, f"Bulk {job.action} #{job.pk} stopped", "success")
