"""The tree's pages: Stories (grouped by epic, with KPI cards) and Subtasks (grouped by story,
expandable rows), and the batch actions on them: generate subtasks for all (or selected)
stories, launch a whole tree, follow a batch's progress, stop it, retry it.

The pages only observe: each POST calls one engine service and answers with the part of the
page it changed; a batch's progress panel polls while the batch runs.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from features.access import get_feature, get_workspace
from features.actions import FeatureError
from features.models import Feature, Membership, Workspace
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import engine
from pipeline import tree_queries as queries
from pipeline.engine.trees import final_message, plural


class TreeFilters(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *queries.STATES.items()], required=False
    )
    kind = forms.ChoiceField(
        choices=[("", "Stories and subtasks"), *queries.KINDS.items()], required=False
    )
    epic = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1)


def _filters(request: HtmxHttpRequest) -> TreeFilters | HttpResponse:
    filters = TreeFilters(request.GET)
    if filters.is_valid():
        return filters
    field, errors = next(iter(filters.errors.items()))
    return HttpResponse(f"Bad {field} filter: {' '.join(str(e) for e in errors)}", status=400)


def _page_context(workspace: Workspace, membership: Membership) -> dict[str, Any]:
    return {"workspace": workspace, "membership": membership}


@login_required
@require_GET
def stories_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    filters = _filters(request)
    if isinstance(filters, HttpResponse):
        return filters
    tree = queries.build_tree(
        workspace, status=filters.cleaned_data["status"], kind=filters.cleaned_data["kind"]
    )
    context = {
        **_page_context(workspace, membership),
        "page": "stories",
        "tree": tree,
        "filters": filters,
    }
    template = "pipeline/stories.html#tree-body" if request.htmx else "pipeline/stories.html"
    return render(request, template, context)


@login_required
@require_GET
def stories_kpis(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The KPI cards again, once a batch changed the tree."""
    workspace, membership = get_workspace(request.user, slug)
    context = {
        **_page_context(workspace, membership),
        "counts": queries.build_tree(workspace).counts,
    }
    return render(request, "pipeline/stories.html#kpis", context)


@login_required
@require_GET
def subtasks_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    filters = _filters(request)
    if isinstance(filters, HttpResponse):
        return filters
    groups, counts = queries.subtask_groups(
        workspace, status=filters.cleaned_data["status"], epic_id=filters.cleaned_data["epic"]
    )
    context = {
        **_page_context(workspace, membership),
        "groups": groups,
        "counts": counts,
        "filters": filters,
        "epics": queries.epics_of(workspace),
        "show_epic_filter": True,
    }
    template = "pipeline/subtasks.html#table-body" if request.htmx else "pipeline/subtasks.html"
    return render(request, template, context)


# --- Batch actions on an epic ------------------------------------------------------------------


def render_epic_group(
    request: HtmxHttpRequest, epic: Feature, membership: Membership, *, status: int = 200
) -> HttpResponse:
    tree = queries.build_tree(epic.workspace, epic=epic)
    context = {"group": tree.groups[0], "membership": membership, "workspace": epic.workspace}
    return HttpResponse(
        render_to_string("pipeline/stories.html#epic-group", context, request=request),
        status=status,
    )


def _answer(
    request: HtmxHttpRequest,
    epic: Feature,
    membership: Membership,
    message: str,
    level: str,
    *,
    status: int = 200,
) -> HttpResponse:
    """htmx: the epic's redrawn section with a toast; a plain form post: back to the Stories
    page, with the message shown there."""
    if not request.htmx:
        messages.add_message(
            request, messages.ERROR if level == "error" else messages.INFO, message
        )
        url = reverse("features:stories", args=[epic.workspace.slug])
        return redirect(f"{url}#epic-{epic.pk}")
    return with_toast(render_epic_group(request, epic, membership, status=status), message, level)


def _started(started: engine.Started, what: str, noun: str = "card") -> str:
    message = f"{what} {plural(len(started.runs), noun)}"
    if started.skipped:
        message += f"; {len(started.skipped)} left out ({started.skipped[0][1]})"
    return message


@login_required
@require_GET
def epic_tree(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One epic's section of the tree, redrawn when a batch of it changed the tree."""
    epic, membership = get_feature(request.user, pk)
    if epic.kind != Feature.Kind.EPIC:
        raise Http404("Only an epic has a tree.")
    return render_epic_group(request, epic, membership)


@login_required
@require_POST
def generate_subtasks(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """ "Generate subtasks for all stories", or for the ticked ones (scope=selected)."""
    epic, membership = get_feature(request.user, pk, write=True)
    story_ids: list[int] | None = None
    if request.POST.get("scope") == "selected":
        try:
            story_ids = [int(v) for v in request.POST.getlist("story")]
        except ValueError:
            return with_toast(HttpResponse(status=400), "Story ids are numbers.", "error")
        if not story_ids:
            message = "Tick the stories to generate subtasks for, or generate for all."
            return with_toast(HttpResponse(status=422), message, "error")
    try:
        started = engine.generate_subtasks(epic, request.user, story_ids=story_ids)
    except (engine.EngineError, FeatureError) as exc:
        return _answer(request, epic, membership, str(exc), "error", status=409)
    message = _started(started, "Generating subtasks for", "story")
    return _answer(request, epic, membership, message, "info")


@login_required
@require_POST
def launch_tree(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    epic, membership = get_feature(request.user, pk, write=True)
    try:
        started = engine.launch_tree(epic, request.user)
    except (engine.EngineError, FeatureError) as exc:
        return _answer(request, epic, membership, str(exc), "error", status=409)
    return _answer(request, epic, membership, _started(started, "Whole tree launched:"), "info")


# --- A batch's progress, Stop and Retry --------------------------------------------------------


def _batch(request: HtmxHttpRequest, slug: str, pk: int, *, write: bool = False) -> tuple[Any, ...]:
    workspace, membership = get_workspace(request.user, slug, write=write)
    batch = queries.batch_for(workspace, pk)
    if batch is None:
        raise Http404("No such batch.")
    return workspace, membership, batch


def _panel(
    request: HtmxHttpRequest, workspace: Workspace, membership: Membership, batch: Any, **extra: Any
) -> HttpResponse:
    context = {
        "batch": engine.progress(batch),
        "membership": membership,
        "workspace": workspace,
        **extra,
    }
    return render(request, "pipeline/stories.html#batch", context)


@login_required
@require_GET
def batch_progress(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """The batch's progress panel. A page that watched it run (``?watching=1``) gets the final
    toast with the panel that first shows it finished, and its tree is redrawn."""
    workspace, membership, batch = _batch(request, slug, pk)
    response = _panel(request, workspace, membership, batch)
    if request.GET.get("watching") != "1":
        return response
    if batch.finished_at is not None:
        level = "warning" if (batch.summary or {}).get("failed") else "success"
        triggers = {"tree-changed": {"epic": batch.root_id}}
        return with_toast(response, final_message(batch), level, triggers=triggers)
    # The page's counts follow the batch as it goes.
    response["HX-Trigger"] = json.dumps({"batch-progress": {"batch": batch.pk}})
    return response


@login_required
@require_POST
def stop_batch(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership, batch = _batch(request, slug, pk, write=True)
    try:
        stopped = engine.stop_batch(batch, request.user)
    except engine.EngineError as exc:
        return with_toast(_panel(request, workspace, membership, batch), str(exc), "error")
    message = f"Stopped {stopped} run{'s' if stopped != 1 else ''} of batch #{batch.pk}"
    response = _panel(request, workspace, membership, batch)
    return with_toast(response, message, "success", triggers={"tree-changed": {}})


@login_required
@require_POST
def retry_batch(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership, batch = _batch(request, slug, pk, write=True)
    try:
        runs = engine.retry_batch(batch, request.user)
    except engine.EngineError as exc:
        return with_toast(_panel(request, workspace, membership, batch), str(exc), "error")
    message = f"Retrying {len(runs)} card{'s' if len(runs) != 1 else ''} of batch #{batch.pk}"
    return with_toast(_panel(request, workspace, membership, batch), message, "success")
