"""A workspace's automation settings (owners and admins): what the engine reads at every run.

Saved through engine.update_workspace_settings, the writer the admin uses too: automation mode
and stop stage decide how far a Launch goes, the run limit and the budget are checked at every
claim, and raising either sends the runs they held back at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from features.access import get_workspace
from features.models import Feature, Stage, Workspace
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import engine
from pipeline.providers import get_provider
from pipeline.providers.base import PermanentProviderError


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class WorkspaceSettingsForm(forms.ModelForm):
    stop_stage = StageChoiceField(
        queryset=Stage.objects.none(),
        required=False,
        empty_label="None: run to the end of the board",
        help_text="An automatic pipeline halts when the card reaches this stage.",
    )
    max_concurrent_runs = forms.IntegerField(
        min_value=1, max_value=100, help_text="Runs of this workspace running at once."
    )
    monthly_budget_usd = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=2,
        label="Monthly budget (USD)",
        help_text="Empty: no budget. Runs wait once this month's spend reaches it.",
    )

    class Meta:
        model = Workspace
        fields = (
            "automation_mode",
            "stop_stage",
            "max_concurrent_runs",
            "monthly_budget_usd",
            "default_provider",
            "default_model",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stop = self.fields["stop_stage"]
        assert isinstance(stop, forms.ModelChoiceField)
        # Only this workspace's feature-board stages: never another workspace's.
        stop.queryset = Stage.objects.filter(
            workspace=self.instance, board=Stage.Board.FEATURE
        ).order_by("position")

    def clean_default_provider(self) -> str:
        name = str(self.cleaned_data["default_provider"]).strip()
        try:
            get_provider(name)
        except PermanentProviderError as exc:
            raise forms.ValidationError(str(exc)) from None
        return name


@login_required
@require_http_methods(["GET", "POST"])
def workspace_settings(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=True)
    form = WorkspaceSettingsForm(request.POST or None, instance=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            resumed = engine.update_workspace_settings(
                workspace,
                {name: form.cleaned_data[name] for name in form.changed_data},
                user=request.user,
            )
        except engine.EngineError as exc:
            form.add_error(None, str(exc))
        else:
            if not request.htmx:
                return redirect("features:settings", slug=workspace.slug)
            note = f"Saved; {resumed} waiting run(s) resumed" if resumed else "Saved"
            form = WorkspaceSettingsForm(instance=workspace)
            response = render(request, "features/settings.html#settings-form", _context(form))
            return with_toast(response, note, "success")
    template = "features/settings.html#settings-form" if request.htmx else "features/settings.html"
    status = 422 if form.errors else 200
    return render(request, template, {**_context(form), "membership": membership}, status=status)


def _context(form: WorkspaceSettingsForm) -> dict[str, object]:
    workspace = form.instance
    stages = Stage.objects.filter(workspace=workspace).select_related("recipe")
    return {
        "workspace": workspace,
        "form": form,
        "stages": stages.order_by("board", "position"),
        "kind_rows": kind_rows(workspace),
    }


@dataclass
class KindRow:
    kind: str
    label: str
    stages: list[tuple[str, str, bool]]  # (key, name, runs there)

    @property
    def whole_board(self) -> bool:
        return all(on for _, _, on in self.stages)


def kind_rows(workspace: Workspace, chosen: dict[str, list[str]] | None = None) -> list[KindRow]:
    """Each kind with its board's stages and whether it runs through each (the form's rows)."""
    paths = workspace.kind_stages if chosen is None else chosen
    stages = list(Stage.objects.filter(workspace=workspace).order_by("board", "position"))
    rows = []
    for kind, label in Feature.Kind.choices:
        board = Stage.Board.WORK if kind == Feature.Kind.TASK else Stage.Board.FEATURE
        path = paths.get(kind)
        rows.append(
            KindRow(
                kind,
                str(label),
                [
                    (s.key, s.name, path is None or s.key in path)
                    for s in stages
                    if s.board == board
                ],
            )
        )
    return rows


@login_required
@require_POST
def kind_stages(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Which stages each kind of card runs through: a story's default path plans and stops."""
    workspace, membership = get_workspace(request.user, slug, admin=True)
    chosen = {
        kind: [str(k) for k in request.POST.getlist(f"kind-{kind}")] for kind in Feature.Kind.values
    }
    context: dict[str, Any] = {"workspace": workspace, "membership": membership}
    try:
        engine.update_workspace_settings(workspace, {"kind_stages": chosen}, user=request.user)
    except engine.EngineError as exc:
        context.update(kind_rows=kind_rows(workspace, chosen), kind_error=str(exc))
        if not request.htmx:
            form = WorkspaceSettingsForm(instance=workspace)
            context.update(_context(form), kind_rows=kind_rows(workspace, chosen))
            return render(request, "features/settings.html", context, status=422)
        return render(request, "features/settings.html#kinds-form", context, status=422)
    if not request.htmx:
        return redirect("features:settings", slug=workspace.slug)
    context["kind_rows"] = kind_rows(workspace)
    response = render(request, "features/settings.html#kinds-form", context)
    return with_toast(response, "Saved: pipelines by kind", "success")
