from __future__ import annotations

from django import forms

from features.notices import KINDS
from notifications.models import NotificationSetting, Webhook

EVENT_LABELS = {
    "run.awaiting_decision": "A result waits for Accept / Reject",
    "run.awaiting_start": "A stage waits for Start",
    "run.failed": "A run failed",
    "pipeline.finished": "A pipeline finished",
    "budget.reached": "The monthly budget is reached",
    "slots.exhausted": "Runs wait long for a free slot",
    "health.failing": "A health check fails (incident opened)",
    "health.recovered": "A health check recovered",
    "worker.gone": "A worker went silent (run taken back)",
}
EVENT_CHOICES = [(k, EVENT_LABELS[k]) for k in KINDS]


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        help_text="http(s) only; private and loopback addresses are refused unless the operator "
        "allows them.",
    )
    format = forms.ChoiceField(choices=Webhook.Format.choices, initial=Webhook.Format.RUNWAY)
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none chosen: every event",
    )


class NotificationSettingForm(forms.Form):
    mode = forms.ChoiceField(
        choices=NotificationSetting.Mode.choices, label="Email me", initial="immediate"
    )
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
