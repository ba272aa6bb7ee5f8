"""The writes of the notifications app: webhooks, deliveries and people's email settings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from features.models import Workspace
from features.notices import KINDS
from features.outbound import Refused, check_url
from notifications import signing
from notifications.models import Delivery, NotificationSetting, Webhook

if TYPE_CHECKING:
    from notifications.delivery import Outcome

MAX_WEBHOOKS_PER_WORKSPACE = 20


class WebhookError(Exception):
    """A webhook request that cannot be done; the message says what to fix."""


def _clean_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in KINDS]
    if unknown:
        raise WebhookError(f"Unknown event type {unknown[0]!r}; choose from {', '.join(KINDS)}.")
    return chosen


def do_create_webhook(
    workspace: Workspace, user: User, *, url: str, events: Iterable[str], format: str
) -> tuple[Webhook, str]:
    """A new webhook and its secret (returned once, never stored). Raises WebhookError for a
    URL the outbound rules refuse (private addresses unless the operator allows them), an
    unknown event type or format, or too many webhooks."""
    if format not in Webhook.Format.values:
        raise WebhookError(f"Unknown format {format!r}; choose runway or slack.")
    chosen = _clean_events(events)
    try:
        target = check_url(url.strip())
    except Refused as exc:
        raise WebhookError(str(exc)) from None
    if Webhook.objects.filter(workspace=workspace).count() >= MAX_WEBHOOKS_PER_WORKSPACE:
        raise WebhookError(f"A workspace has at most {MAX_WEBHOOKS_PER_WORKSPACE} webhooks.")
    salt = signing.new_salt()
    secret = signing.secret_for(salt)
    webhook = Webhook.objects.create(
        workspace=workspace,
        url=target.url,
        events=chosen,
        format=format,
        secret_salt=salt,
        secret_hint=secret[-4:],
        created_by=user,
    )
    return webhook, secret


def do_delete_webhook(webhook: Webhook) -> None:
    webhook.delete()


def do_resume_webhook(webhook: Webhook) -> None:
    """Unpause: its waiting deliveries go out now, oldest first."""
    from notifications.tasks import drain_later

    now = timezone.now()
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(paused_at=None, pause_reason="")
        Delivery.objects.filter(webhook=webhook, status=Delivery.Status.PENDING).update(
            next_attempt_at=now, first_failed_at=None
        )
        transaction.on_commit(partial(drain_later, webhook.pk), robust=True)


def do_resend_delivery(delivery: Delivery) -> None:
    """Send this event again (same ``id``, so the receiver can tell it is a repeat)."""
    from notifications.tasks import drain_later

    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=timezone.now(),
            first_failed_at=None,
            delivered_at=None,
        )
        transaction.on_commit(partial(drain_later, delivery.webhook_id), robust=True)


def pause_failing_webhook(webhook: Webhook, *, since: datetime, last: Outcome) -> bool:
    """Pause a webhook that has failed since `since` and tell its owner by email (after
    commit). Returns False when it was already paused."""
    what = f"HTTP {last.status_code}" if last.status_code is not None else last.error
    reason = f"Failing since {since:%Y-%m-%d %H:%M} UTC (last: {what})"[:300]
    done = Webhook.objects.filter(pk=webhook.pk, paused_at__isnull=True).update(
        paused_at=timezone.now(), pause_reason=reason
    )
    if done and webhook.created_by_id is not None:
        from notifications.tasks import tell_paused_later

        transaction.on_commit(partial(tell_paused_later, webhook.pk), robust=True)
    return bool(done)


def do_update_notification_setting(
    user: User, workspace: Workspace, *, mode: str, events: Iterable[str]
) -> NotificationSetting:
    """A person's email settings in a workspace. Raises WebhookError for an unknown mode or
    event type."""
    if mode not in NotificationSetting.Mode.values:
        raise WebhookError(f"Unknown mode {mode!r}; choose immediate, digest or off.")
    chosen = _clean_events(events)
    setting, _ = NotificationSetting.objects.update_or_create(
        user=user, workspace=workspace, defaults={"mode": mode, "events": chosen}
    )
    return setting
