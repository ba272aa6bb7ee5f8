"""The workspace audit log: who did what to which thing, when, and what changed.

Append-only in the application: an entry is written once by `audit.log.record` and never
changed or deleted through the ORM (`save` of a stored entry, `delete`, `QuerySet.update` and
`QuerySet.delete` raise `AuditLogIsAppendOnly`). On PostgreSQL a trigger also refuses UPDATE and
DELETE in SQL, with two exceptions the data model needs: a deleted user's entries keep their
`actor_label` while `actor` becomes NULL, and deleting a whole workspace removes its log (the
deletion sets the `runway.audit_purge` transaction setting; see `_allow_workspace_purge`).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models
from django.db.models.signals import pre_delete
from django.dispatch import receiver


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or delete an audit entry through the ORM."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit entries cannot be changed.")

    def delete(self) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    class Source(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        CLI = "cli", "CLI"
        ADMIN = "admin", "Admin"
        EMAIL = "email", "Email"
        SYSTEM = "system", "System"

    workspace = models.ForeignKey(
        "features.Workspace", on_delete=models.CASCADE, related_name="audit_entries"
    )
    # Nullable: the log outlives the people in it (actor_label keeps who they were).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150, blank=True)
    # A dotted slug, "<thing>.<verb>": run.launch, card.move, member.role... (see audit.log).
    action = models.CharField(max_length=40)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    # {"field": {"before": ..., "after": ...}} or any JSON object describing the change.
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEB)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="audit_ws_created"),
            models.Index(fields=["workspace", "action", "-created_at"], name="audit_ws_action"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.target_label}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit entries cannot be deleted.")


@receiver(pre_delete, sender="features.Workspace")
def _allow_workspace_purge(sender: type, instance: models.Model, using: str, **kwargs: Any) -> None:
    """Let this transaction's cascade delete the workspace's entries past the SQL trigger.

    Django sends pre_delete inside the deletion's transaction, so SET LOCAL ends with it.
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL runway.audit_purge = 'on'")
