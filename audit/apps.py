from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # The purge receiver lets a workspace's deletion take its audit rows with it (see models).
        from audit import models  # noqa: F401
