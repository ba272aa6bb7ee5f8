"""Sending a webhook's deliveries: in event order, at least once, with backoff, paused after a
day of failures.

One drain per webhook at a time (a lease on the webhook row, claimed by a conditional UPDATE):
it sends the oldest pending delivery first and stops at the first one that must wait, so a
run's events arrive in order even across retries. A 2xx marks a delivery delivered; 5xx, 408,
429, timeouts and connection errors are retried after RUNWAY_WEBHOOK_BACKOFF_SECONDS x 2^n
(capped by RUNWAY_WEBHOOK_MAX_BACKOFF_SECONDS); any other status (the receiver refused the
body), or a URL the outbound rules refuse, fails the delivery at once — "Send again" retries it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from features.outbound import OutboundError, Refused, fetch
from notifications import signing
from notifications.formats import body_for
from notifications.models import Attempt, Delivery, Webhook

logger = logging.getLogger(__name__)
RETRYABLE = frozenset({408, 429})
RESPONSE_BYTES = 2048  # kept from each answer for the log


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    response: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.status_code is None:
            return not self.error.startswith("Refused")
        return self.status_code >= 500 or self.status_code in RETRYABLE


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failure: base x 2^(attempts-1), capped."""
    base = settings.RUNWAY_WEBHOOK_BACKOFF_SECONDS
    return float(min(base * 2 ** max(attempts - 1, 0), settings.RUNWAY_WEBHOOK_MAX_BACKOFF_SECONDS))


def _lease_seconds() -> float:
    return settings.RUNWAY_WEBHOOK_TIMEOUT_SECONDS + 30


def _take_lease(webhook_id: int, now: datetime) -> bool:
    until = now + timedelta(seconds=_lease_seconds())
    return bool(
        Webhook.objects.filter(pk=webhook_id, paused_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=until)
    )


def _renew_lease(webhook_id: int) -> None:
    until = timezone.now() + timedelta(seconds=_lease_seconds())
    Webhook.objects.filter(pk=webhook_id).update(lease_until=until)


def drain(webhook_id: int) -> float | None:
    """Send the webhook's due deliveries in order. Returns in how many seconds the next one
    is due (the caller schedules another drain then), or None when nothing waits."""
    while True:
        if not _take_lease(webhook_id, timezone.now()):
            return None  # paused, gone, or another drain is sending (it loops until empty)
        try:
            wait = _send_in_order(webhook_id)
        finally:
            Webhook.objects.filter(pk=webhook_id).update(lease_until=None)
        if wait is not None:
            return wait
        # A delivery committed while the lease was held found it taken and left it to us.
        if not Delivery.objects.filter(
            webhook_id=webhook_id, status=Delivery.Status.PENDING
        ).exists():
            return None


def _send_in_order(webhook_id: int) -> float | None:
    while True:
        webhook = Webhook.objects.filter(pk=webhook_id, paused_at__isnull=True).first()
        if webhook is None:
            return None
        head = (
            Delivery.objects.select_related("event")
            .filter(webhook_id=webhook_id, status=Delivery.Status.PENDING)
            .order_by("event_id")
            .first()
        )
        if head is None:
            return None
        now = timezone.now()
        if head.next_attempt_at is not None and head.next_attempt_at > now:
            return (head.next_attempt_at - now).total_seconds()
        _renew_lease(webhook_id)
        outcome = send(webhook, head)
        if not _record(webhook, head, outcome):
            return backoff(head.attempts + 1)


def send(webhook: Webhook, delivery: Delivery) -> Outcome:
    """POST the event to the webhook once (signed, capped, no redirects followed)."""
    body = body_for(webhook, delivery.event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Runway-Event": delivery.event.kind,
        "X-Runway-Delivery": delivery.event.event_id,
        signing.HEADER: signing.signature(signing.secret_for(webhook.secret_salt), timestamp, body),
    }
    started = time.monotonic()
    try:
        response = fetch(
            webhook.url,
            method="POST",
            headers=headers,
            body=body,
            timeout=settings.RUNWAY_WEBHOOK_TIMEOUT_SECONDS,
            max_bytes=RESPONSE_BYTES,
            max_redirects=0,
        )
    except Refused as exc:
        return Outcome(None, f"Refused: {exc}"[:300], "", _ms(started))
    except OutboundError as exc:
        return Outcome(
            None, f"{exc} (no answer in time, or the connection failed)", "", _ms(started)
        )
    text = response.body.decode("utf-8", errors="replace")
    return Outcome(response.status, "", text, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(webhook: Webhook, delivery: Delivery, outcome: Outcome) -> bool:
    """Store the attempt and its effect on the delivery (and the webhook). True when the drain
    may go on to the next delivery."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    fields: dict[str, object] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:300],
        "last_response": outcome.response,
    }
    if outcome.ok:
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=now, first_failed_at=None)
    elif outcome.retryable:
        fields.update(
            next_attempt_at=now + timedelta(seconds=backoff(attempts)),
            first_failed_at=delivery.first_failed_at or now,
        )
    else:
        fields.update(
            status=Delivery.Status.FAILED, first_failed_at=delivery.first_failed_at or now
        )
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error[:300],
            response=outcome.response,
            duration_ms=outcome.duration_ms,
        )
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        if not outcome.ok and outcome.retryable:
            since = delivery.first_failed_at or now
            if now - since >= timedelta(seconds=settings.RUNWAY_WEBHOOK_PAUSE_AFTER_SECONDS):
                from notifications.actions import pause_failing_webhook

                pause_failing_webhook(webhook, since=since, last=outcome)
    logger.info(
        "webhook %s delivery %s attempt %s: %s",
        webhook.pk,
        delivery.pk,
        attempts,
        outcome.status_code or outcome.error,
    )
    return outcome.ok or not outcome.retryable


def due_webhooks(now: datetime) -> list[int]:
    """Webhooks (not paused, not being sent) with a delivery due: the sweep's work."""
    return list(
        Webhook.objects.filter(paused_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(
            deliveries__status=Delivery.Status.PENDING,
            deliveries__next_attempt_at__lte=now,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
