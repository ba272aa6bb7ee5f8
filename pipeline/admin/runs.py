"""The operator's console for runs, their logs and the workers.

A run's state belongs to the engine: it is claimed, fenced and advanced by conditional UPDATEs, so
a status typed into a form could resurrect a zombie or skip a step. Operators change runs only
through the actions here, each one an engine call.
"""

from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from features.admin import ReadOnlyInline, operator
from pipeline import engine
from pipeline.models import ModelPrice, Run, RunLog, WorkerHeartbeat


class RunLogInline(ReadOnlyInline):
    model = RunLog
    fields = ("seq", "created_at", "level", "attempt", "message")
    readonly_fields = fields
    ordering = ("seq",)


# What an operator may change on a run: the knobs its next attempt reads.
RUN_EDITABLE_FIELDS = ("max_attempts", "provider", "model")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "feature",
        "stage",
        "status",
        "decision",
        "attempt",
        "worker_id",
        "created_at",
        "finished_at",
        "error_kind",
    )
    list_filter = ("status", "error_kind", "decision", "workspace")
    search_fields = ("feature__title", "error_message")
    date_hierarchy = "created_at"
    list_select_related = ("feature", "stage__workspace")
    # Both are read-only below; should either ever become editable, it must not turn into a
    # dropdown of every card or run.
    raw_id_fields = ("feature", "parent_run")
    inlines = (RunLogInline,)
    actions = ("retry_runs", "cancel_runs", "rescue_runs")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "workspace",
                    "feature",
                    "stage",
                    "status",
                    "decision",
                    "parent_run",
                    "batch",
                )
            },
        ),
        (
            "Pipeline",
            {"fields": ("pipeline_next", "step_index", "step_total", "max_attempts", "attempt")},
        ),
        (
            "Execution",
            {
                "fields": (
                    "triggered_by",
                    "worker_id",
                    "created_at",
                    "queued_at",
                    "claimed_at",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                    "next_attempt_at",
                )
            },
        ),
        ("Error", {"fields": ("error_kind", "error_message")}),
        (
            "Provider and cost",
            {
                "fields": (
                    "provider",
                    "model",
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                    "cost_usd",
                )
            },
        ),
        ("Result", {"fields": ("result", "skill_versions"), "classes": ("collapse",)}),
    )
    # Everything but the knobs read by the run's next attempt; see the module docstring.
    readonly_fields = tuple(
        field
        for _, options in fieldsets
        for field in cast(tuple[str, ...], options["fields"])  # one field per row here
        if field not in RUN_EDITABLE_FIELDS
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Runs are created by launch, retry and completion, which plan the chain and enqueue.
        return False

    @admin.action(description="Retry selected failed runs")
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        user = operator(request)
        retried: list[str] = []
        for run in queryset.order_by("pk"):
            try:
                new_run = engine.retry_run(run, user)
            except engine.EngineError as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            retried.append(f"#{run.pk} → #{new_run.pk}")
        if retried:
            self.message_user(
                request, f"Retried {len(retried)} run(s): {', '.join(retried)}.", messages.SUCCESS
            )

    @admin.action(description="Cancel (stop the pipeline of) selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        user = operator(request)
        stopped_features: set[int] = set()
        cancelled = 0
        for run in queryset.select_related("feature").order_by("pk"):
            # Stopping works per card: a second selected run of the same card has nothing left.
            if run.feature_id in stopped_features:
                continue
            if not run.is_active and run.decision != Run.Decision.PENDING:
                # Stopping would hit whatever the card runs now, which nobody selected.
                self.message_user(
                    request,
                    f"Run #{run.pk} is already {run.get_status_display().lower()}; "
                    "nothing of it to stop.",
                    messages.WARNING,
                )
                continue
            try:
                cancelled += engine.stop_pipeline(run.feature, user)
            except engine.EngineError as exc:
                self.message_user(request, f"Run #{run.pk}: {exc}", messages.WARNING)
                continue
            stopped_features.add(run.feature_id)
        if stopped_features:
            self.message_user(
                request,
                f"Stopped the pipeline of {len(stopped_features)} card(s); "
                f"{cancelled} run(s) cancelled or rejected.",
                messages.SUCCESS,
            )

    @admin.action(description="Rescue selected running runs (requeue now)")
    def rescue_runs(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        user = operator(request)
        rescued: list[str] = []
        for run in queryset.order_by("pk"):
            try:
                moved = engine.rescue_run(run, user)
            except engine.EngineError as exc:
                self.message_user(request, f"Run #{run.pk}: {exc}", messages.WARNING)
                continue
            if not moved:
                # The guard also fails when a worker claimed it again since the page loaded.
                self.message_user(
                    request,
                    f"Run #{run.pk} is not running (or was claimed again meanwhile); "
                    "only running runs can be rescued.",
                    messages.WARNING,
                )
                continue
            rescued.append(f"#{run.pk}")
        if rescued:
            self.message_user(
                request,
                f"Requeued {len(rescued)} run(s): {', '.join(rescued)}.",
                messages.SUCCESS,
            )


@admin.register(RunLog)
class RunLogAdmin(admin.ModelAdmin):
    """Append-only: lines are numbered by the engine and streamed to viewers as written."""

    list_display = ("run", "seq", "level", "attempt", "created_at", "short_message")
    list_filter = ("level",)
    search_fields = ("message",)
    list_select_related = ("run__stage",)
    raw_id_fields = ("run",)
    ordering = ("-run__id", "seq")  # the latest run first, each run's lines in order

    @admin.display(description="message")
    def short_message(self, obj: RunLog) -> str:
        return obj.message if len(obj.message) <= 120 else f"{obj.message[:119]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RunLog | None = None) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Written by the workers themselves every few seconds; a form edit would be overwritten."""

    list_display = ("worker_id", "hostname", "pid", "concurrency", "last_seen", "alive")
    list_filter = ("hostname",)
    search_fields = ("worker_id", "hostname")

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: WorkerHeartbeat) -> bool:
        return obj.is_alive

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: WorkerHeartbeat | None = None
    ) -> bool:
        return False


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Prices per million tokens; a run's cost is computed from them when each step ends.

    The seeded Claude prices are examples: check the provider's price list and adjust them.
    A model with no row costs $0, and a row for a prefix (claude-sonnet-4-5) covers dated
    versions of it (claude-sonnet-4-5-20250929)."""

    list_display = (
        "provider",
        "model",
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "updated_at",
    )
    list_editable = (
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
    )
    list_filter = ("provider",)
    search_fields = ("model",)
