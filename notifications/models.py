"""Events worth telling, where they go (webhooks, people's email) and what became of them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from features.models import Feature, Workspace
from features.notices import KINDS

EVENT_CHOICES = [(k, k) for k in KINDS]


class Event(models.Model):
    """One happening, with the JSON body every webhook receives (``payload``, stable schema)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40, choices=EVENT_CHOICES)
    feature = models.ForeignKey(
        Feature, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_id = models.BigIntegerField(null=True, blank=True)
    text = models.CharField(max_length=600)
    payload = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["workspace", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def event_id(self) -> str:
        return f"evt_{self.public_id.hex}"


class Webhook(models.Model):
    """A workspace's receiver. Only a random salt is stored for its secret: the secret itself
    is derived from it with the server's key (notifications.signing) and shown once."""

    class Format(models.TextChoices):
        RUNWAY = "runway", "Runway JSON"
        SLACK = "slack", "Slack (incoming webhook)"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text="Event types sent; empty sends every type.")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.RUNWAY)
    secret_salt = models.CharField(max_length=64)
    secret_hint = models.CharField(max_length=8, help_text="The secret's last characters.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True)
    # A drain holds this lease while it sends, so two workers never send one webhook's queue at
    # once (which keeps each run's events in order).
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, kind: str) -> bool:
        return not self.events or kind in self.events


class Delivery(models.Model):
    """One event for one webhook, created in the event's transaction; sent at least once."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # a 4xx other than 408/429: the receiver refused it

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_response = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event"], name="delivery_once_per_event")
        ]
        indexes = [models.Index(fields=["webhook", "status", "id"])]

    def __str__(self) -> str:
        return f"{self.event} → webhook {self.webhook_id}"


class Attempt(models.Model):
    """One try of a delivery, for the deliveries log."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    response = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class NotificationSetting(models.Model):
    """A person's email settings in one workspace. Without a row: the defaults (immediate
    email for what needs a person)."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        DIGEST = "digest", "Daily digest"
        OFF = "off", "Off"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.IMMEDIATE)
    events = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="notification_setting_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.workspace_id}: {self.mode}"


class EmailNotice(models.Model):
    """An event someone is to hear about by email: sent alone (immediate) or in their digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="emails")
    digest = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event"], name="email_notice_once")]
        indexes = [models.Index(fields=["digest", "sent_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} for {self.user_id}"


class UsedLink(models.Model):
    """A one-click decision link that acted: its nonce can never act again."""

    nonce = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    run_id = models.BigIntegerField()
    action = models.CharField(max_length=10)
    used_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.action} run {self.run_id}"
