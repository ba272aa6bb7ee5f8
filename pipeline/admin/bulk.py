"""Bulk actions in the admin: read-only (they start from the Runs page, the API or the CLI),
with their per-run outcomes inline."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from pipeline.models import BulkAction, BulkActionItem


class BulkActionItemInline(admin.TabularInline):
    model = BulkActionItem
    fields = ("run", "outcome", "message", "new_run", "processed_at")
    readonly_fields = fields
    raw_id_fields = ("run", "new_run")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BulkAction)
class BulkActionAdmin(admin.ModelAdmin):
    list_display = ("id", "action", "workspace", "actor", "status", "progress", "created_at")
    list_filter = ("action", "status", "workspace")
    list_select_related = ("workspace", "actor")
    readonly_fields = (
        "workspace",
        "actor",
        "action",
        "filter",
        "source",
        "status",
        "total",
        "done",
        "skipped",
        "failed",
        "error",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    )
    fields = readonly_fields
    inlines = (BulkActionItemInline,)

    @admin.display(description="progress")
    def progress(self, obj: BulkAction) -> str:
        return f"{obj.processed} of {obj.total}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
