"""Celery tasks of notifications: thin, by primary key, on the outbound queue
(RUNWAY_NOTIFY_QUEUE, the health checks' thread pool by default), never on the pipeline's."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from notifications import delivery, emails
from notifications.models import EmailNotice

logger = logging.getLogger(__name__)


def _enqueue(task: Any, args: tuple[Any, ...], countdown: float | None = None) -> None:
    """Send a task after commit; never raises: the sweep finds whatever a lost message left."""
    try:
        task.apply_async(args, countdown=countdown)
    except Exception as exc:  # any broker failure: kombu's, redis-py's, a socket's
        logger.warning("%s%s not sent (%s); the notifications sweep will", task.name, args, exc)


def drain_later(webhook_id: int, countdown: float | None = None) -> None:
    _enqueue(drain_webhook, (webhook_id,), countdown)


def email_later(notice_id: int) -> None:
    _enqueue(send_email, (notice_id,))


def tell_paused_later(webhook_id: int) -> None:
    _enqueue(tell_paused, (webhook_id,))


@shared_task(name="notifications.drain_webhook")
def drain_webhook(webhook_id: int) -> None:
    wait = delivery.drain(webhook_id)
    if wait is not None:
        drain_later(webhook_id, countdown=max(wait, 0.05))


@shared_task(
    name="notifications.send_email",
    autoretry_for=(OSError,),  # SMTP and socket errors
    retry_backoff=True,
    max_retries=8,
)
def send_email(notice_id: int) -> None:
    emails.send_notice_email(notice_id)


@shared_task(name="notifications.tell_paused")
def tell_paused(webhook_id: int) -> None:
    emails.send_paused_email(webhook_id)


@shared_task(name="notifications.sweep")
def sweep() -> int:
    """Beat, every minute: drain webhooks with deliveries due and send immediate emails whose
    message was lost (unsent for over a minute). Returns how many it sent on."""
    now = timezone.now()
    hooks = delivery.due_webhooks(now)
    for webhook_id in hooks:
        drain_later(webhook_id)
    stale = list(
        EmailNotice.objects.filter(
            digest=False, sent_at__isnull=True, created_at__lt=now - timedelta(minutes=1)
        ).values_list("pk", flat=True)[:500]
    )
    for notice_id in stale:
        email_later(notice_id)
    return len(hooks) + len(stale)


@shared_task(name="notifications.send_digests")
def send_digests() -> int:
    """Beat, once a day: everyone's digest."""
    return emails.send_digests()
