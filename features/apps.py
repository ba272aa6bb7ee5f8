from __future__ import annotations

from django.apps import AppConfig


class FeaturesConfig(AppConfig):
    name = "features"
    verbose_name = "Workspaces and features"

    def ready(self) -> None:
        # Connects the receivers that tell open sockets about access changes.
        from features import signals  # noqa: F401
