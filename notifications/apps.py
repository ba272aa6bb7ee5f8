from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications (webhooks, email, one-click links)"

    def ready(self) -> None:
        # The engine and the card domain emit notices; recording them here, in the emitter's
        # transaction, is what makes a webhook delivery durable.
        from features import notices
        from notifications.recording import record_notice

        notices.listen(record_notice)
