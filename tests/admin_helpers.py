"""Driving the Django admin as a browser would, for the admin tests."""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from django.test import Client
from django.urls import reverse


def admin_url(model: type[Model], view: str, *args: object) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def form_data(client: Client, url: str, **changes: Any) -> dict[str, Any]:
    """What a browser would post back from the page unchanged, inlines included, plus `changes`."""
    context = client.get(url).context
    forms = [context["adminform"].form]
    data: dict[str, Any] = {}
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is False or value is None:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return data | changes
