"""Edit and rerun: a finished run's stage again, with a person's feedback and/or an edited input.

The old run and its artifacts stay as they were; the new run links back to it (`rerun_of`) and
its documents are new versions, linked from the timeline as a diff against the old ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from features.access import get_feature
from features.models import Artifact
from features.views.common import HtmxHttpRequest
from pipeline import engine
from pipeline.models import Run


class RerunForm(forms.Form):
    feedback = forms.CharField(required=False, max_length=5_000, widget=forms.Textarea)
    description = forms.CharField(required=False, max_length=20_000, widget=forms.Textarea)
    # Which earlier document to replace (its input name, e.g. spec_md) and its edited text.
    document = forms.CharField(required=False, max_length=200)
    document_text = forms.CharField(required=False, max_length=100_000, widget=forms.Textarea)

    def edited_inputs(self, current_description: str) -> dict[str, str]:
        data = self.cleaned_data
        inputs: dict[str, str] = {}
        if data["description"].strip() and data["description"] != current_description:
            inputs["description"] = data["description"]
        if data["document"] and data["document_text"].strip():
            inputs[data["document"]] = data["document_text"]
        return inputs


@dataclass(frozen=True)
class DiffLink:
    name: str
    old: int
    new: int


def diff_links(runs: list[Run], artifacts: list[Artifact]) -> dict[int, list[DiffLink]]:
    """For each rerun, its documents against the versions the run it redid wrote (also set on
    each run as `rerun_diffs`, for the timeline)."""
    reruns = {r.pk: r.rerun_of_id for r in runs if r.rerun_of_id}
    by_run: dict[tuple[int | None, str], int] = {(a.run_id, a.name): a.version for a in artifacts}
    links: dict[int, list[DiffLink]] = {}
    for artifact in artifacts:
        old_run = reruns.get(artifact.run_id or 0)
        if old_run is None:
            continue
        old = by_run.get((old_run, artifact.name), artifact.version - 1)
        if old >= 1:
            links.setdefault(artifact.run_id or 0, []).append(
                DiffLink(artifact.name, old, artifact.version)
            )
    for run in runs:
        run.rerun_diffs = links.get(run.pk, [])  # type: ignore[attr-defined]
    return links


@login_required
@require_POST
def rerun(request: HtmxHttpRequest, pk: int, run_id: int) -> HttpResponse:
    feature, _ = get_feature(request.user, pk, write=True)
    run = Run.objects.filter(pk=run_id, feature=feature).first()
    if run is None:
        raise Http404("No such run.")
    form = RerunForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect(f"{reverse('features:detail', args=[feature.pk])}#run-{run.pk}")
    try:
        new_run = engine.rerun_run(
            run,
            request.user,
            feedback=form.cleaned_data["feedback"],
            inputs=form.edited_inputs(feature.description),
        )
    except engine.EngineError as exc:
        messages.error(request, str(exc))
        return redirect(f"{reverse('features:detail', args=[feature.pk])}#run-{run.pk}")
    messages.success(request, f"Rerunning {run.stage.name} as run #{new_run.pk}")
    return redirect(f"{reverse('features:detail', args=[feature.pk])}#run-{new_run.pk}")
