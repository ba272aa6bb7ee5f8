"""Webhooks and their deliveries in the operator's console: read-only (the product writes
them), never showing a secret's salt. Pausing and sending again are the workspace page's."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from notifications.models import Delivery, Webhook


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Webhook)
class WebhookAdmin(_ReadOnly):
    list_display = ("url", "workspace", "format", "paused_at", "created_by", "created_at")
    list_filter = ("format",)
    search_fields = ("url", "workspace__name")
    exclude = ("secret_salt",)


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly):
    list_display = ("event", "webhook", "status", "attempts", "last_status_code", "delivered_at")
    list_filter = ("status",)
    list_select_related = ("event", "webhook")
    search_fields = ("webhook__url",)
