"""Notification pages: a workspace's webhooks (owners and admins) and a person's email
settings; a webhook's deliveries log; the one-click decision page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from features.access import get_workspace, workspaces_for
from features.views.common import HtmxHttpRequest
from notifications import actions
from notifications.decisions import decide_page
from notifications.forms import NotificationSettingForm, WebhookForm
from notifications.models import Delivery, NotificationSetting, Webhook
from notifications.recording import DEFAULT_EMAIL_EVENTS

__all__ = ["decide_page"]


@login_required
def settings_home(request: HtmxHttpRequest) -> HttpResponse:
    """Where emails' "notification settings" link lands: the first workspace's page."""
    workspace = workspaces_for(request.user).order_by("name").first()
    if workspace is None:
        return render(request, "notifications/none.html")
    return redirect("notifications:page", workspace.slug)


def _setting_form(request: HtmxHttpRequest, workspace_id: int) -> NotificationSettingForm:
    setting = NotificationSetting.objects.filter(
        user=request.user, workspace_id=workspace_id
    ).first()
    initial = (
        {"mode": setting.mode, "events": setting.events}
        if setting
        else {"mode": "immediate", "events": list(DEFAULT_EMAIL_EVENTS)}
    )
    return NotificationSettingForm(initial=initial)


@login_required
@require_http_methods(["GET", "POST"])
def page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """GET: the page. POST (owners and admins): a new webhook, its secret shown once."""
    workspace, membership = get_workspace(request.user, slug, admin=request.method == "POST")
    form = WebhookForm(request.POST if request.method == "POST" else None)
    created = secret = None
    if form.is_bound and form.is_valid():
        try:
            created, secret = actions.do_create_webhook(
                workspace, request.user, **form.cleaned_data
            )
            form = WebhookForm()
        except actions.WebhookError as exc:
            form.add_error("url", str(exc))
    context = {
        "workspace": workspace,
        "membership": membership,
        "form": form,
        "setting_form": _setting_form(request, workspace.pk),
        "webhooks": Webhook.objects.filter(workspace=workspace) if membership.is_admin else [],
        "created": created,
        "secret": secret,
    }
    response = render(
        request, "notifications/page.html", context, status=422 if form.errors else 200
    )
    add_never_cache_headers(response)  # it may hold a secret: no cache keeps a copy
    return response


@login_required
@require_POST
def save_settings(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    form = NotificationSettingForm(request.POST)
    if not form.is_valid():
        context = {
            "workspace": workspace,
            "membership": membership,
            "form": WebhookForm(),
            "setting_form": form,
            "webhooks": Webhook.objects.filter(workspace=workspace) if membership.is_admin else [],
        }
        return render(request, "notifications/page.html", context, status=422)
    actions.do_update_notification_setting(request.user, workspace, **form.cleaned_data)
    return redirect("notifications:page", workspace.slug)


def _webhook(request: HtmxHttpRequest, slug: str, pk: int) -> Webhook:
    workspace, _ = get_workspace(request.user, slug, admin=True)
    return get_object_or_404(Webhook, pk=pk, workspace=workspace)


@login_required
def webhook(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """The deliveries log: status, attempts, last answer, and Send again."""
    hook = _webhook(request, slug, pk)
    deliveries = Paginator(
        Delivery.objects.filter(webhook=hook).select_related("event").prefetch_related("tries"),
        50,
    ).get_page(request.GET.get("page"))
    context = {"workspace": hook.workspace, "webhook": hook, "deliveries": deliveries}
    return render(request, "notifications/webhook.html", context)


@login_required
@require_POST
def resend(request: HtmxHttpRequest, slug: str, pk: int, delivery_id: int) -> HttpResponse:
    hook = _webhook(request, slug, pk)
    actions.do_resend_delivery(get_object_or_404(Delivery, pk=delivery_id, webhook=hook))
    return redirect("notifications:webhook", slug, hook.pk)


@login_required
@require_POST
def resume(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    hook = _webhook(request, slug, pk)
    actions.do_resume_webhook(hook)
    return redirect("notifications:webhook", slug, hook.pk)


@login_required
@require_POST
def delete(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    hook = _webhook(request, slug, pk)
    actions.do_delete_webhook(hook)
    return redirect("notifications:page", slug)
