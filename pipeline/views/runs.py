"""Health check, and the "Runs & workers" page with its operator actions (rescue, cancel)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from features.access import get_workspace
from features.models import Membership, Workspace
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import engine, queries
from pipeline.health import health_report, public_status
from pipeline.models import Run


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Anyone (load balancers, uptime monitors): ok or failing per part, 503 when one fails."""
    report = health_report()
    return JsonResponse(public_status(report), status=200 if report["ok"] else 503)


# --- Runs & workers ---------------------------------------------------------------------------


@login_required
@require_GET
# The same URL answers with the whole page or just the table: caches must keep them apart.
@vary_on_headers("HX-Request")
def runs_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    stages = queries.workspace_stages(workspace)
    filters = queries.RunFilters.from_query(request.GET, stages)
    context = {
        "workspace": workspace,
        "membership": membership,
        "stages": stages,
        "statuses": Run.Status.choices,
        "filters": filters,
        "runs": queries.runs_page(workspace, filters, request.GET.get("page")),
    }
    if membership.is_admin and not request.htmx:
        context["bulk"] = queries.bulk_panel(workspace)
    # A history restore after a cache miss needs the whole page, not the table it once swapped.
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "pipeline/runs.html#runs-table", context)
    return render(request, "pipeline/runs.html", {**context, **queries.status_context(workspace)})


@login_required
@require_GET
@never_cache
def runs_status(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The summary and workers, polled every few seconds so worker health stays current."""
    workspace, _ = get_workspace(request.user, slug)
    return render(
        request,
        "pipeline/runs.html#runs-status",
        {"workspace": workspace, **queries.status_context(workspace)},
    )


def _row_response(
    request: HtmxHttpRequest,
    workspace: Workspace,
    membership: Membership,
    run_id: int,
    message: str,
    *,
    ok: bool,
) -> HttpResponse:
    """The run's row as it is now: after a refusal too, since the row was probably stale."""
    context = {
        "workspace": workspace,
        "membership": membership,
        "row": queries.run_row(workspace, run_id),
    }
    response = render(request, "pipeline/runs.html#run-row", context, status=200 if ok else 409)
    return with_toast(response, message, "success" if ok else "error")


@login_required
@require_POST
def rescue_run(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Declare a running run's worker dead and requeue the run now, before the sweep would."""
    workspace, membership = get_workspace(request.user, slug, admin=True)
    run = queries.run_in(workspace, pk)
    if run.status != Run.Status.RUNNING:
        status = run.get_status_display().lower()
        refusal = f"Run #{run.pk} is {status}: only running runs can be rescued."
        return _row_response(request, workspace, membership, run.pk, refusal, ok=False)
    try:
        rescued = engine.rescue_run(run, request.user)
    except engine.EngineError as exc:
        return _row_response(request, workspace, membership, run.pk, str(exc), ok=False)
    if not rescued:
        # The conditional update missed: the run finished or was claimed again meanwhile.
        refusal = f"Run #{run.pk} changed meanwhile: nothing to rescue."
        return _row_response(request, workspace, membership, run.pk, refusal, ok=False)
    message = f"Run #{run.pk} requeued"
    return _row_response(request, workspace, membership, run.pk, message, ok=True)


@login_required
@require_POST
def cancel_run(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Stop the run's pipeline: the run is its card's only active one, so this cancels it."""
    workspace, membership = get_workspace(request.user, slug, admin=True)
    run = queries.run_in(workspace, pk)
    if not run.is_active:
        refusal = f"Run #{run.pk} is {run.get_status_display().lower()}: nothing to cancel."
        return _row_response(request, workspace, membership, run.pk, refusal, ok=False)
    try:
        engine.stop_pipeline(run.feature, request.user)
    except engine.EngineError as exc:
        return _row_response(request, workspace, membership, run.pk, str(exc), ok=False)
    message = f"Run #{run.pk} cancelled"
    return _row_response(request, workspace, membership, run.pk, message, ok=True)
