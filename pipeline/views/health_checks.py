"""The card page's health check form: set, change or remove a live card's check."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from features.access import get_feature
from features.health import HealthCheckError, do_set_health_check
from features.views.common import HtmxHttpRequest, with_toast
from pipeline import card_queries as queries


class HealthCheckForm(forms.Form):
    type = forms.ChoiceField(
        choices=[("", "No check"), ("http", "HTTP"), ("command", "Command")], required=False
    )
    target = forms.CharField(max_length=2000, required=False, strip=True)
    args = forms.CharField(max_length=500, required=False, strip=True)
    expect = forms.CharField(max_length=40, required=False, strip=True)
    every = forms.CharField(max_length=20, required=False, strip=True)

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        if not data["type"]:
            return {}
        target = "url" if data["type"] == "http" else "command"
        config: dict[str, Any] = {"type": data["type"], target: data["target"]}
        if data["type"] == "command":
            config["args"] = data["args"].split()
        config.update({k: data[k] for k in ("expect", "every") if data[k]})
        return config


@login_required
@require_POST
def set_health_check(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    feature, membership = get_feature(request.user, pk, write=True)
    form = HealthCheckForm(request.POST)
    error = ""
    try:
        if not form.is_valid():
            raise HealthCheckError("Check the health check's fields.")
        feature = do_set_health_check(feature, form.config(), request.user)
    except HealthCheckError as exc:
        error = str(exc)
    if not request.htmx and not error:
        return redirect("features:detail", pk=feature.pk)
    context = {
        **queries.linked_work(feature),
        "feature": feature,
        "membership": membership,
        "health_error": error,
    }
    response = render(request, "features/detail.html#health", context, status=422 if error else 200)
    return with_toast(response, error or "Health check saved", "error" if error else "success")
