"""A workspace's automation settings (owners and admins): what the engine reads at every run.

Saved through engine.update_workspace_settings, the writer the admin uses too: automation mode
and stop stage decide how far a Launch goes, the run limit and the budget are checked at every
claim, and raising either sends the runs they held back at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from features.access import get_workspace
from features.models import Stage, Workspace
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
                workspace, {name: form.cleaned_data[name] for name in form.changed_data}
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
    }
