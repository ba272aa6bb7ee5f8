"""/w/<slug>/audit/: the workspace's audit log, filtered by action, actor, dates and target,
paginated, and exported as CSV with the same filters (owners and admins only).

The filters live in the query string, so a filtered view is a link that can be shared, and the
export link carries the same filters.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.models import AuditEntry
from features.access import get_workspace
from features.models import Workspace
from features.views.common import HtmxHttpRequest

PAGE_SIZE = 50
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


class AuditFilter(forms.Form):
    action = forms.CharField(required=False, max_length=40)
    actor = forms.CharField(required=False, max_length=150)
    target = forms.CharField(required=False, max_length=200)
    since = forms.DateField(required=False, label="From")
    until = forms.DateField(required=False, label="To")
    page = forms.IntegerField(required=False, min_value=1)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("“From” must be on or before “To”.")
        return data


def _day_start(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered(workspace: Workspace, data: dict[str, Any]) -> QuerySet[AuditEntry]:
    """The workspace's entries matching the cleaned filters, newest first. Dates are whole
    days in the site's time zone, both ends included; `target` matches the target's label
    (contains, any case) or its id ("#42" or "42")."""
    entries = AuditEntry.objects.filter(workspace=workspace)
    if data.get("action"):
        entries = entries.filter(action=data["action"])
    if data.get("actor"):
        entries = entries.filter(actor_label=data["actor"])
    if data.get("since"):
        entries = entries.filter(created_at__gte=_day_start(data["since"]))
    if data.get("until"):
        entries = entries.filter(created_at__lt=_day_start(data["until"] + timedelta(days=1)))
    if target := (data.get("target") or "").strip():
        entries = entries.filter(
            Q(target_label__icontains=target) | Q(target_id=target.removeprefix("#"))
        )
    return entries.order_by("-created_at", "-id")


def _form(request: HtmxHttpRequest) -> AuditFilter:
    form = AuditFilter(request.GET)
    form.is_valid()
    return form


def _choices(workspace: Workspace) -> dict[str, list[str]]:
    entries = AuditEntry.objects.filter(workspace=workspace).order_by()
    return {
        "actions": sorted(set(entries.values_list("action", flat=True).distinct())),
        "actors": sorted(set(entries.values_list("actor_label", flat=True).distinct())),
    }


@login_required
@require_GET
def audit_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=True)
    form = _form(request)
    if form.errors:
        context = {"workspace": workspace, "membership": membership, "form": form}
        return render(request, "features/audit.html", context | _choices(workspace), status=400)
    paginator = Paginator(filtered(workspace, form.cleaned_data), PAGE_SIZE)
    page = paginator.get_page(form.cleaned_data.get("page") or 1)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "workspace": workspace,
        "membership": membership,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        **_choices(workspace),
    }
    return render(request, "features/audit.html", context)


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class _Echo:
    """csv.writer's file: each row comes back as the string written, to stream it."""

    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = ["time", "actor", "action", "target_type", "target_id", "target", "changes", "source"]


def csv_rows(entries: Iterable[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries:
        yield writer.writerow(
            safe_cell(value)
            for value in (
                entry.created_at.isoformat(),
                entry.actor_label,
                entry.action,
                entry.target_type,
                entry.target_id,
                entry.target_label,
                json.dumps(entry.changes, ensure_ascii=False, sort_keys=True),
                entry.source,
            )
        )


@login_required
@require_GET
def audit_csv(request: HtmxHttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    workspace, _ = get_workspace(request.user, slug, admin=True)
    form = _form(request)
    if form.errors:
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return HttpResponse(
            f"Bad filter: {problems}", status=400, content_type="text/plain; charset=utf-8"
        )
    entries = filtered(workspace, form.cleaned_data).iterator(chunk_size=500)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csv_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{workspace.slug}-{stamp}.csv"'
    return response
