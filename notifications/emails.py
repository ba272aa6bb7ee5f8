"""Email: one message per event (immediate) or one digest a day, plain text and HTML, sent
through Django's email framework (EMAIL_BACKEND / EMAIL_* settings from the environment)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from features.models import Membership
from notifications.links import absolute, decision_link
from notifications.models import EmailNotice, Event, Webhook
from notifications.recording import DECISIONS

logger = logging.getLogger(__name__)
_LABELS = {"accept": "Accept", "reject": "Reject", "start": "Start"}


@dataclass(frozen=True)
class Item:
    event: Event
    card_url: str | None
    actions: list[tuple[str, str]]  # (label, one-click link for this person)


def _item(event: Event, user: User, can_decide: bool) -> Item:
    links = event.payload.get("links", {})
    actions = []
    if can_decide and event.run_id is not None:
        actions = [
            (_LABELS[a], decision_link(event.run_id, a, user.pk))
            for a in DECISIONS.get(event.kind, ())
        ]
    return Item(event, links.get("card"), actions)


def _can_decide(user: User, workspace_id: int) -> bool:
    membership = Membership.objects.filter(user=user, workspace_id=workspace_id).first()
    return membership is not None and membership.can_write


def _send(user: User, subject: str, template: str, context: dict[str, object]) -> None:
    context = {
        **context,
        "user": user,
        "settings_url": absolute(reverse("notifications:settings_home")),
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"notifications/email/{template}.txt", context),
        to=[user.email],
    )
    message.attach_alternative(
        render_to_string(f"notifications/email/{template}.html", context), "text/html"
    )
    message.send()


def send_notice_email(notice_id: int) -> bool:
    """Send one immediate email. Claimed by a conditional UPDATE first, so a repeated task
    sends nothing; if sending raises, the claim is undone and the error propagates (the task
    retries). Returns whether this call sent it."""
    with transaction.atomic():
        claimed = EmailNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(
            sent_at=timezone.now()
        )
    if not claimed:
        return False
    notice = EmailNotice.objects.select_related("event", "event__workspace", "user").get(
        pk=notice_id
    )
    event, user = notice.event, notice.user
    try:
        item = _item(event, user, _can_decide(user, event.workspace_id))
        _send(
            user,
            f"[Runway · {event.workspace.name}] {event.text}"[:200],
            "event",
            {"item": item, "workspace": event.workspace},
        )
    except Exception:
        EmailNotice.objects.filter(pk=notice_id).update(sent_at=None)
        raise
    return True


def send_digests(now: datetime | None = None) -> int:
    """One email per person with everything their digest collected since the last one.
    Returns how many emails were sent."""
    now = now or timezone.now()
    user_ids = (
        EmailNotice.objects.filter(digest=True, sent_at__isnull=True, created_at__lte=now)
        .values_list("user_id", flat=True)
        .distinct()
    )
    sent = 0
    for user in User.objects.filter(pk__in=list(user_ids), is_active=True):
        notices = list(
            EmailNotice.objects.select_related("event", "event__workspace")
            .filter(user=user, digest=True, sent_at__isnull=True, created_at__lte=now)
            .order_by("event_id")
        )
        claimed = EmailNotice.objects.filter(
            pk__in=[n.pk for n in notices], sent_at__isnull=True
        ).update(sent_at=now)
        if claimed != len(notices):
            continue  # another digest run took some of them; it sends them
        decides = {ws: _can_decide(user, ws) for ws in {n.event.workspace_id for n in notices}}
        items = [_item(n.event, user, decides[n.event.workspace_id]) for n in notices]
        try:
            _send(
                user,
                f"[Runway] Your daily digest: {len(items)} event{'s' if len(items) != 1 else ''}",
                "digest",
                {"items": items},
            )
        except Exception:
            EmailNotice.objects.filter(pk__in=[n.pk for n in notices]).update(sent_at=None)
            raise
        sent += 1
    return sent


def send_paused_email(webhook_id: int) -> None:
    """Tell a webhook's owner it was paused, and how to resume it."""
    webhook = (
        Webhook.objects.select_related("workspace", "created_by").filter(pk=webhook_id).first()
    )
    if webhook is None or webhook.created_by is None or not webhook.created_by.email:
        return
    url = absolute(reverse("notifications:webhook", args=[webhook.workspace.slug, webhook.pk]))
    _send(
        webhook.created_by,
        f"[Runway · {webhook.workspace.name}] Webhook paused: {webhook.url}"[:200],
        "paused",
        {"webhook": webhook, "url": url},
    )
