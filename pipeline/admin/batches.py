"""The operator's console for batches (generate subtasks for all stories, whole trees).

A batch is a label over runs: its state is its runs', so nothing here is editable. Stop and
Retry are the engine's, as on the Stories page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from features.admin import operator
from pipeline import engine
from pipeline.models import Batch


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "root", "workspace", "created_by", "created_at", "progress")
    list_filter = ("kind", "workspace")
    search_fields = ("root__title",)
    list_select_related = ("root", "workspace", "created_by")
    raw_id_fields = ("root",)
    readonly_fields = (
        "workspace",
        "kind",
        "root",
        "created_by",
        "created_at",
        "finished_at",
        "stopped_at",
        "summary",
        "progress",
    )
    fields = readonly_fields
    actions = ("stop_batches", "retry_batches")

    @admin.display(description="progress")
    def progress(self, obj: Batch) -> str:
        progress = engine.progress(obj)
        line = f"{progress.done} of {progress.total} done"
        if progress.failed:
            line += f", {progress.failed} failed or stopped"
        return f"{line} · {progress.message}" if progress.finished else line

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # batches start from an epic: Stories page, API or CLI

    @admin.action(description="Stop selected batches")
    def stop_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        for batch in queryset.order_by("pk"):
            try:
                stopped = engine.stop_batch(batch, operator(request))
            except engine.EngineError as exc:
                self.message_user(request, f"Batch #{batch.pk}: {exc}", messages.WARNING)
                continue
            self.message_user(request, f"Batch #{batch.pk}: {stopped} run(s) stopped.")

    @admin.action(description="Retry what failed or was stopped in selected batches")
    def retry_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        for batch in queryset.order_by("pk"):
            try:
                runs = engine.retry_batch(batch, operator(request))
            except engine.EngineError as exc:
                self.message_user(request, f"Batch #{batch.pk}: {exc}", messages.WARNING)
                continue
            self.message_user(request, f"Batch #{batch.pk}: {len(runs)} card(s) retried.")
