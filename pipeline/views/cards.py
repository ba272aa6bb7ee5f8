"""Card actions from the board. Each calls one service and answers with the card as it now is.

The page only observes the pipeline: these POSTs start or stop work, and the websocket shows
what the workers do with it.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from features.access import get_feature, get_workspace
from features.actions import FeatureError
from features.models import Feature, Membership, Workspace
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import card_queries as queries
from pipeline import engine
from pipeline.models import Run
from pipeline.views.common import card_response, panel_response


def _run_in(feature: Feature, **filters: object) -> Run:
    run = feature.runs.filter(**filters).order_by("-created_at", "-id").first()
    if run is None:
        raise engine.EngineError("Nothing to do: this card has no such run any more.")
    return run


def _launch(feature: Feature, request: HtmxHttpRequest) -> str:
    launched = engine.launch_pipeline(feature, request.user)
    verb = "Resumed" if launched.resumed else "Launched"
    # People read stage names; the keys (prd, tasks) are for scripts.
    names = dict(feature.workspace.stages.values_list("key", "name"))
    return f"{verb}: {' → '.join(names.get(key, key) for key in launched.pipeline)}"


def _stop(feature: Feature, request: HtmxHttpRequest) -> str:
    engine.stop_pipeline(feature, request.user)
    return "Pipeline stopped"


def _retry(feature: Feature, request: HtmxHttpRequest) -> str:
    last = feature.runs.order_by("-created_at", "-id").first()
    if last is None or last.status not in (Run.Status.FAILED, Run.Status.CANCELLED):
        raise engine.EngineError("Nothing to retry: the card's last run did not fail.")
    run = engine.retry_run(last, request.user)
    return f"Retrying {run.stage.name}"


def _start(feature: Feature, request: HtmxHttpRequest) -> str:
    run = engine.start_run(_run_in(feature, status=Run.Status.AWAITING_APPROVAL), request.user)
    return f"Started {run.stage.name}"


def _accept(feature: Feature, request: HtmxHttpRequest) -> str:
    run = _run_in(feature, status=Run.Status.SUCCEEDED, decision=Run.Decision.PENDING)
    engine.accept_run(run, request.user)
    return "Result accepted"


def _reject(feature: Feature, request: HtmxHttpRequest) -> str:
    run = _run_in(feature, status=Run.Status.SUCCEEDED, decision=Run.Decision.PENDING)
    engine.reject_run(run, request.user, request.POST.get("reason", "")[:300].strip())
    return "Result rejected"


ACTIONS: dict[str, Callable[[Feature, HtmxHttpRequest], str]] = {
    "launch": _launch,
    "stop": _stop,
    "retry": _retry,
    "start": _start,
    "accept": _accept,
    "reject": _reject,
}


@login_required
@require_POST
def card_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    feature, membership = get_feature(request.user, pk, write=True)
    # The card page asks for its live panel back; the board for the card.
    respond = panel_response if request.htmx.target == "card-live" else card_response
    try:
        message = ACTIONS[action](feature, request)
    except (engine.EngineError, FeatureError) as exc:
        response = respond(request, feature, membership, status=409)
        return with_toast(response, str(exc), "error", feature_id=feature.pk)
    response = respond(request, feature, membership)
    # Keyed by card: this toast replaces the card's older ones (a "Generating…", a failure).
    return with_toast(response, message, "success", feature_id=feature.pk)


def render_columns(
    request: HtmxHttpRequest, workspace: Workspace, membership: Membership, stage_ids: set[int]
) -> str:
    return "".join(
        render_to_string(
            "features/board.html#column",
            {"column": column, "membership": membership, "workspace": workspace, "oob": True},
            request=request,
        )
        for column in queries.columns_for(workspace, stage_ids)
    )


class MoveCardForm(forms.Form):
    """A drop: the stage's id and, optionally, the index in its column."""

    stage = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    position = forms.IntegerField(min_value=0, max_value=1_000_000, required=False)


@login_required
@require_POST
def move_card(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Drag and drop or the keyboard menu: put the card at a place in a column."""
    feature, membership = get_feature(request.user, pk, write=True)
    form = MoveCardForm(request.POST)
    stage = (
        feature.workspace.stages.filter(pk=form.cleaned_data["stage"]).first()
        if form.is_valid()
        else None
    )
    if stage is None:
        return with_toast(HttpResponse(status=400), "Choose a stage of this board.", "error")
    position = form.cleaned_data["position"]
    touched = {feature.stage_id, stage.pk}
    error = None
    try:
        engine.move_feature(feature, stage, user=request.user, position=position)
    except (FeatureError, engine.EngineError) as exc:
        error = str(exc)
    if request.htmx.target == "card-live":  # the card page's "Move to"
        response = panel_response(request, feature, membership)
    else:
        response = HttpResponse(render_columns(request, feature.workspace, membership, touched))
    return with_toast(response, error, "error") if error else response


# Tasks come from pipelines; people create the other kinds.
KIND_CHOICES = [k for k in Feature.Kind.choices if k[0] != Feature.Kind.TASK]


class NewFeatureForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea, required=False, max_length=20_000)
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial=Feature.Kind.FEATURE)
    launch = forms.BooleanField(required=False, initial=True, label="Launch now")


@login_required
@require_POST
def new_feature(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, write=True)
    form = NewFeatureForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "features/board.html#new-feature-form",
            {"form": form, "workspace": workspace, "kinds": KIND_CHOICES},
            status=422,
        )
    try:
        created = engine.create_feature(
            workspace,
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
            kind=form.cleaned_data["kind"],
            user=request.user,
            launch=form.cleaned_data["launch"],
        )
    except (FeatureError, engine.EngineError) as exc:
        # Nothing was created: the dialog stays open and says why.
        form.add_error(None, f"Not created: {exc}")
        return render(
            request,
            "features/board.html#new-feature-form",
            {"form": form, "workspace": workspace, "kinds": KIND_CHOICES},
            status=422,
        )
    feature = created.feature
    message, level = f"“{feature.title}” created", "success"
    extra: dict[str, object] = {"feature_id": feature.pk}
    if created.launched is not None:
        message, level = "Generating feature in background…", "info"
        # Stop from the toast itself; the next toast about the card replaces this one.
        extra["stop_url"] = reverse("features:action", args=[feature.pk, "stop"])
    response = HttpResponse(render_columns(request, workspace, membership, {feature.stage_id}))
    response["HX-Reswap"] = "none"  # keep the form; the new card arrives as an out-of-band column
    return with_toast(response, message, level, triggers={"closeDialog": "new-feature"}, **extra)
