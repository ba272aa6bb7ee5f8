"""The card detail page: header and edit form, artifacts and their diffs, runs, live log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import reswap, retarget

from features.access import get_feature
from features.actions import FeatureError, do_update_feature
from features.diffs import line_diff
from features.markdown import render_markdown
from features.models import Artifact, Feature, Membership
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import card_queries as queries
from pipeline.card_live import panel_context
from pipeline.models import Generation, Run, RunLog
from pipeline.tree_queries import EpicGroup, build_tree
from pipeline.views.rerun import diff_links
from skills.validation import artifact_key

LOG_LINES_SHOWN = 500
TITLE_ERROR = "A title is 1 to 200 characters."


class EditFeatureForm(forms.Form):
    title = forms.CharField(
        max_length=200, error_messages={"required": TITLE_ERROR, "max_length": TITLE_ERROR}
    )
    description = forms.CharField(widget=forms.Textarea, required=False, max_length=20_000)
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class CompareForm(forms.Form):
    # Bounded so a silly number is a 400, not a database integer overflow.
    a = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    b = forms.IntegerField(min_value=1, max_value=2**31 - 1)


@dataclass
class ArtifactGroup:
    dom_id: str
    name: str
    versions: list[Artifact]  # newest first
    html: SafeString | None = None
    tasks: list[dict[str, Any]] | None = None
    raw_json: str = ""
    link: str = ""

    @property
    def latest(self) -> Artifact:
        return self.versions[0]

    @property
    def diffable(self) -> bool:
        return len(self.versions) > 1


def _artifact_group(index: int, versions: list[Artifact]) -> ArtifactGroup:
    latest = versions[0]
    group = ArtifactGroup(f"artifact-{index}", latest.name, versions)
    if latest.kind == Artifact.Kind.JSON:
        tasks = latest.data.get("tasks") if isinstance(latest.data, dict) else None
        group.tasks = [t for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else None
        group.raw_json = latest.content or json.dumps(latest.data, indent=2)
    elif latest.kind == Artifact.Kind.DOCUMENT:
        group.html = render_markdown(latest.content)
    elif latest.content.startswith(("https://", "http://")):
        group.link = latest.content.strip()  # url and pr artifacts; only web links are clickable
    return group


def _page(feature: Feature, membership: Membership) -> dict[str, Any]:
    page = queries.feature_page(feature)
    by_name: dict[str, list[Artifact]] = {}
    for artifact in page["artifacts"]:  # ordered by name, newest version first
        by_name.setdefault(artifact.name, []).append(artifact)
    runs: list[Run] = page["runs"]
    # Follow the active run live; otherwise keep the last run's log at hand, collapsed.
    log_run = next((r for r in runs if r.is_active), runs[-1] if runs else None)
    return {
        **page,
        **log_context(log_run),
        **panel_context(feature, membership),
        "feature": feature,
        "membership": membership,
        "artifact_groups": [_artifact_group(i, v) for i, v in enumerate(by_name.values(), 1)],
        "form": _edit_form(feature),
        "rerun_diffs": diff_links(runs, page["artifacts"]),
        "generations": generation_changes(feature),
        # An epic's page has its tree: stories, counts, bulk generation and its batch's progress.
        "epic_tree": epic_tree(feature),
        "rerun_inputs": sorted(
            {artifact_key(a.name) for a in page["artifacts"] if a.kind == Artifact.Kind.DOCUMENT}
        ),
    }


def log_context(log_run: Run | None) -> dict[str, Any]:
    """The log panel's context: the run's last LOG_LINES_SHOWN lines (one query)."""
    lines: list[RunLog] = []
    if log_run is not None:
        lines = list(log_run.logs.order_by("-seq")[:LOG_LINES_SHOWN])[::-1]
    return {
        "log_run": log_run,
        "log_lines": lines,
        "log_truncated": len(lines) == LOG_LINES_SHOWN and lines[0].seq > 1,
        "last_seq": lines[-1].seq if lines else 0,
    }


@dataclass
class GenerationChange:
    """One generation of a card's generated children, as the card page tells it."""

    generation: Generation
    added: list[tuple[int, str]]
    updated: list[tuple[int, str]]
    removed: list[tuple[int, str]]


def generation_changes(feature: Feature, limit: int = 5) -> list[GenerationChange]:
    """What each of the card's latest generated lists changed (two queries)."""
    generations = list(
        Generation.objects.filter(parent=feature).select_related("stage").order_by("-id")[:limit]
    )
    ids = {pk for g in generations for pk in (*g.added, *g.updated, *g.removed)}
    titles = dict(Feature.objects.filter(pk__in=ids).values_list("pk", "title"))

    def named(pks: list[int]) -> list[tuple[int, str]]:
        return [(pk, titles[pk]) for pk in pks if pk in titles]

    return [
        GenerationChange(g, named(g.added), named(g.updated), named(g.removed)) for g in generations
    ]


def epic_tree(feature: Feature) -> EpicGroup | None:
    if feature.kind != Feature.Kind.EPIC:
        return None
    return build_tree(feature.workspace, epic=feature).groups[0]


def _edit_form(feature: Feature) -> EditFeatureForm:
    fields = ("title", "description", "version")
    return EditFeatureForm(initial={name: getattr(feature, name) for name in fields})


def _save(feature: Feature, form: EditFeatureForm) -> int | None:
    """Apply the edit; None when saved, else the status that explains why not."""
    if not form.is_valid():
        return 422
    try:
        do_update_feature(
            feature,
            expected_version=form.cleaned_data["version"],
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
        )
    except FeatureError as exc:
        form.add_error(None, str(exc))
        feature.refresh_from_db()
        # The form already checked the text, so a refusal with a moved version means someone
        # saved first: their text stays, and ours is shown back to be merged by hand.
        return 409 if feature.version != form.cleaned_data["version"] else 422
    return None


@login_required
@require_safe
def feature_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    feature, membership = get_feature(request.user, pk)
    return render(request, "features/detail.html", _page(feature, membership))


@login_required
@require_POST
def edit_feature(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    feature, membership = get_feature(request.user, pk, write=True)
    form = EditFeatureForm(request.POST)
    status = _save(feature, form)
    if status is None and not request.htmx:
        return redirect("features:detail", pk=feature.pk)
    if status is None:
        context = {"feature": feature, "membership": membership, "form": _edit_form(feature)}
        response = render(request, "features/detail.html#header", context)
        return with_toast(response, "Saved", "success")
    if not request.htmx:
        context = {**_page(feature, membership), "form": form}
        return render(request, "features/detail.html", context, status=status)
    context = {"feature": feature, "membership": membership, "form": form}
    response = render(request, "features/detail.html#edit-form", context, status=status)
    return reswap(retarget(response, "#edit-form"), "outerHTML")


@login_required
@require_safe
def artifact_diff(request: HtmxHttpRequest, pk: int, name: str) -> HttpResponse:
    feature, membership = get_feature(request.user, pk)
    versions = CompareForm(request.GET)
    if not versions.is_valid():
        return HttpResponseBadRequest("Choose two versions to compare.")
    old_version, new_version = versions.cleaned_data["a"], versions.cleaned_data["b"]
    found = {
        a.version: a
        for a in Artifact.objects.filter(
            feature=feature, name=name, version__in=[old_version, new_version]
        )
    }
    if old_version not in found or new_version not in found:
        raise Http404("No such artifact version.")
    old, new = found[old_version], found[new_version]
    context = {
        "feature": feature,
        "membership": membership,
        "name": name,
        "old": old,
        "new": new,
        "diff": line_diff(old.content, new.content),
        "diff_page": True,
    }
    template = "features/detail.html#diff" if request.htmx else "features/detail.html"
    return render(request, template, context)
