"""The operator's console for workspaces, stages and cards.

Creating a workspace or a card and moving a card go through ``features.actions``, so a change made
here leaves the same stages, audit rows and board events as one made on the board.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from audit.log import Target, record
from features.models import (
    ApiToken,
    Artifact,
    Dependency,
    HealthCheckResult,
    Invitation,
    Membership,
    Stage,
    StageTransition,
)


def operator(request: HttpRequest) -> User:
    """The person acting, for audit rows: admin views only ever serve logged-in staff."""
    assert isinstance(request.user, User)
    return request.user


def adopt(obj: Model, created: Model) -> None:
    """Point the object the admin built at the row an action created.

    The admin keeps using its own instance after save_model (change log, redirect, inlines).
    """
    obj.pk = created.pk
    obj._state.adding = False
    obj.refresh_from_db()


def narrow_stage_choices(form: type[forms.ModelForm], name: str, workspace_id: int) -> None:
    # A stage of another workspace is never a valid choice, and listing only this workspace's
    # keeps the dropdown short and its labels (workspace slug/key) query-free.
    field = form.base_fields.get(name)
    if isinstance(field, ModelChoiceField):
        field.queryset = Stage.objects.filter(workspace_id=workspace_id).select_related("workspace")


class ReadOnlyInline(admin.TabularInline):
    """History rows (transitions, artifacts, run logs) are written by the product, never here."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# --- Workspaces, members, stages ---------------------------------------------------------------


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "workspace", "role", "created_at")
    list_filter = ("role", "workspace")
    search_fields = ("user__username", "user__email", "workspace__name", "workspace__slug")
    list_select_related = ("user", "workspace")
    autocomplete_fields = ("user", "workspace")
    readonly_fields = ("created_at",)

    # Saved and deleted one by one (never a queryset update/delete): the Membership signals
    # that end a removed person's open pages fire, and each change is in the audit log.
    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        before = Membership.objects.filter(pk=obj.pk).values_list("role", flat=True).first()
        super().save_model(request, obj, form, change)
        target = Target("user", obj.user_id, obj.user.get_username())
        if not change:
            record(
                workspace=obj.workspace,
                actor=operator(request),
                action="member.add",
                target=target,
                changes={"role": obj.role},
            )
        elif before != obj.role:
            record(
                workspace=obj.workspace,
                actor=operator(request),
                action="member.role",
                target=target,
                changes={"role": {"before": before, "after": obj.role}},
            )

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        workspace, target = obj.workspace, Target("user", obj.user_id, obj.user.get_username())
        role = obj.role
        super().delete_model(request, obj)
        record(
            workspace=workspace,
            actor=operator(request),
            action="member.remove",
            target=target,
            changes={"role": role},
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "workspace"):
            self.delete_model(request, membership)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: invitations are made on the Members page, where the link is shown once."""

    list_display = [
        "pk",
        "workspace",
        "role",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_by",
        "revoked_at",
    ]
    list_filter = ("role", "workspace")
    list_select_related = ("workspace", "created_by", "accepted_by")
    exclude = ("key_hash",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "name",
        "workspace",
        "board",
        "position",
        "is_delivery",
        "is_done",
        "is_live",
    )
    list_filter = ("board", "is_delivery", "is_done", "is_live", "workspace")
    search_fields = ("key", "name", "workspace__slug", "workspace__name")
    ordering = ("workspace__name", "board", "position")
    list_select_related = ("workspace",)
    autocomplete_fields = ("workspace",)


@admin.register(Dependency)
class DependencyAdmin(admin.ModelAdmin):
    list_display = ("id", "feature", "depends_on")
    search_fields = ("feature__title", "depends_on__title")
    list_filter = ("feature__workspace",)
    list_select_related = ("feature", "depends_on")
    raw_id_fields = ("feature", "depends_on")


@admin.register(StageTransition)
class StageTransitionAdmin(admin.ModelAdmin):
    """The audit trail of card moves: readable, never written by hand."""

    list_display = ("created_at", "feature", "from_stage", "to_stage", "actor_label", "note")
    list_filter = ("feature__workspace",)
    search_fields = ("feature__title", "note")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")  # an audit trail is read newest first
    list_select_related = (
        "feature",
        "from_stage__workspace",
        "to_stage__workspace",
        "actor_user",
    )

    @admin.display(description="actor")
    def actor_label(self, obj: StageTransition) -> str:
        return obj.actor_label

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: StageTransition | None = None
    ) -> bool:
        return False


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "feature", "kind", "run", "created_at")
    list_filter = ("kind", "feature__workspace")
    search_fields = ("name", "feature__title")
    list_select_related = ("feature", "run__stage")
    raw_id_fields = ("feature", "run")
    readonly_fields = ("created_at",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Operators can see and revoke tokens; the secret itself was never stored."""

    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]
    exclude = ["token_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(HealthCheckResult)
class HealthCheckResultAdmin(admin.ModelAdmin):
    """The history of a live feature's health checks: written by the checks, read by people."""

    list_display = ["feature", "ok", "detail", "duration_ms", "checked_at"]
    list_filter = ["ok"]
    search_fields = ["feature__title", "detail"]
    list_select_related = ["feature"]
    date_hierarchy = "checked_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
