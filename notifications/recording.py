"""Turn a notice into an Event, its webhook deliveries and its emails — in the notice's
transaction, so a committed transition always has its deliveries, and a rolled-back one none.

Sending happens after commit (Celery tasks, enqueued with ``transaction.on_commit``); a lost
message is picked up by the beat sweep (``tasks.sweep``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from features import notices
from features.models import Artifact, Feature, Membership, Workspace
from features.notices import Notice
from notifications.links import absolute
from notifications.models import Delivery, EmailNotice, Event, NotificationSetting, Webhook
from pipeline.models import Run

SCHEMA_VERSION = 1
# Without a settings row, writers hear at once about what waits for them or broke.
DEFAULT_EMAIL_EVENTS = (
    notices.AWAITING_DECISION,
    notices.AWAITING_START,
    notices.RUN_FAILED,
    notices.HEALTH_FAILING,
)
DECISIONS = {notices.AWAITING_DECISION: ("accept", "reject"), notices.AWAITING_START: ("start",)}
# Told at most once per this long (a budget holds every run that tries to start).
_ONCE_PER = {
    notices.BUDGET_REACHED: timedelta(days=1),
    notices.SLOTS_EXHAUSTED: timedelta(hours=1),
}


def record_notice(notice: Notice) -> Event | None:
    """Store the event, a delivery per interested webhook and an email row per interested
    person; send them after commit. Returns the event (None when de-duplicated)."""
    now = timezone.now()
    window = _ONCE_PER.get(notice.kind)
    if (
        window is not None
        and Event.objects.filter(
            workspace_id=notice.workspace_id, kind=notice.kind, created_at__gt=now - window
        ).exists()
    ):
        return None
    run, feature = _held_run(notice), _held_card(notice)
    if run is None and notice.run_id is not None:
        run = Run.objects.select_related("stage").filter(pk=notice.run_id).first()
    if feature is None and notice.feature_id is not None:
        feature = Feature.objects.select_related("stage").filter(pk=notice.feature_id).first()
    workspace = (
        feature.workspace
        if feature is not None and Feature.workspace.is_cached(feature)
        else Workspace.objects.get(pk=notice.workspace_id)
    )
    event = Event(
        workspace=workspace, kind=notice.kind, feature=feature, run_id=notice.run_id, created_at=now
    )
    event.text = _text(notice, feature, run)[:600]
    event.payload = payload(event, workspace, feature, run, notice.data)
    event.save()
    _queue_deliveries(event)
    _queue_emails(event)
    return event


def _held_card(notice: Notice) -> Feature | None:
    """The emitter's card when it is this notice's and its stage is loaded (the payload names
    it); None: read it."""
    card = notice.card
    if isinstance(card, Feature) and card.pk == notice.feature_id and Feature.stage.is_cached(card):
        return card
    return None


def _held_run(notice: Notice) -> Run | None:
    run = notice.run
    if isinstance(run, Run) and run.pk == notice.run_id and Run.stage.is_cached(run):
        return run
    return None


def _text(notice: Notice, feature: Feature | None, run: Run | None) -> str:
    if run is not None and feature is not None and notice.kind != notices.PIPELINE_FINISHED:
        return f"“{feature.title}” · {run.stage.name}: {notice.text}"
    return notice.text


def payload(
    event: Event,
    workspace: Workspace,
    feature: Feature | None,
    run: Run | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The webhook body (schema in README "Notifications"): ids, the card, the run, a text for
    people and links. Links to decide name nobody: they ask whoever opens them to sign in."""
    from notifications.links import decision_link

    card_url = absolute(reverse("features:detail", args=[feature.pk])) if feature else None
    links: dict[str, str] = {
        "board": absolute(reverse("features:board", args=[workspace.slug])),
    }
    if card_url:
        links["card"] = card_url
    if run is not None and card_url:
        links["run"] = f"{card_url}#run-{run.pk}"
        for action in DECISIONS.get(event.kind, ()):
            links[action] = decision_link(run.pk, action, None)
    body: dict[str, Any] = {
        "id": event.event_id,
        "type": event.kind,
        "schema": SCHEMA_VERSION,
        "created_at": event.created_at.isoformat(),
        "workspace": {"id": workspace.pk, "slug": workspace.slug, "name": workspace.name},
        "card": _card(feature),
        "run": _run(run),
        "text": event.text,
        "links": links,
        "data": {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)},
    }
    if event.kind == notices.PIPELINE_FINISHED and feature is not None:
        body["data"]["produced"] = _produced(feature)
    return body


def _card(feature: Feature | None) -> dict[str, Any] | None:
    if feature is None:
        return None
    return {
        "id": feature.pk,
        "title": feature.title,
        "kind": feature.kind,
        "stage": feature.stage.key,
        "status": feature.status,
    }


def _run(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "stage": run.stage.key,
        "stage_name": run.stage.name,
        "status": run.status,
        "decision": run.decision,
        "attempt": run.attempt,
        "error": run.error_message or None,
    }


def _produced(feature: Feature) -> dict[str, Any]:
    """The card's documents (latest version of each name) and how many child cards it has, in
    one query: the count rides along as a subquery of the documents' rows."""
    children = (
        Feature.objects.filter(parent=OuterRef("feature_id"))
        .order_by()
        .values("parent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    latest = list(
        Artifact.objects.filter(feature=feature)
        .values("name")
        .annotate(version=Max("version"), children=Subquery(children))
        .order_by("name")
    )
    count = (
        (latest[0]["children"] or 0) if latest else Feature.objects.filter(parent=feature).count()
    )
    return {
        "artifacts": [{"name": a["name"], "version": a["version"]} for a in latest],
        "child_cards": count,
    }


def _queue_deliveries(event: Event) -> None:
    hooks = [
        w for w in Webhook.objects.filter(workspace_id=event.workspace_id) if w.wants(event.kind)
    ]
    if not hooks:
        return
    Delivery.objects.bulk_create(
        [Delivery(webhook=w, event=event, next_attempt_at=event.created_at) for w in hooks]
    )
    from notifications.tasks import drain_later

    for hook in hooks:
        if hook.paused_at is None:
            transaction.on_commit(partial(drain_later, hook.pk), robust=True)


def _queue_emails(event: Event) -> None:
    memberships = list(
        Membership.objects.filter(workspace_id=event.workspace_id, user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
    )
    if not memberships:
        return
    chosen = {
        s.user_id: s
        for s in NotificationSetting.objects.filter(
            workspace_id=event.workspace_id, user_id__in=[m.user_id for m in memberships]
        )
    }
    rows = []
    for membership in memberships:
        setting = chosen.get(membership.user_id)
        if setting is None:
            if not membership.can_write or event.kind not in DEFAULT_EMAIL_EVENTS:
                continue
            digest = False
        elif setting.mode == NotificationSetting.Mode.OFF or event.kind not in setting.events:
            continue
        else:
            digest = setting.mode == NotificationSetting.Mode.DIGEST
        rows.append(EmailNotice(user_id=membership.user_id, event=event, digest=digest))
    created = EmailNotice.objects.bulk_create(rows)
    from notifications.tasks import email_later

    for row in created:
        if not row.digest:
            transaction.on_commit(partial(email_later, row.pk), robust=True)
