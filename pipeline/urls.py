from __future__ import annotations

from django.urls import path

from pipeline.views import bulk as bulk_views
from pipeline.views import runs as views

app_name = "pipeline"

urlpatterns = [
    # Health
    path("healthz", views.healthz, name="healthz"),
    # Runs & workers
    path("w/<slug:slug>/runs/", views.runs_page, name="runs"),
    path("w/<slug:slug>/runs/status", views.runs_status, name="runs_status"),
    path("w/<slug:slug>/runs/<int:pk>/rescue", views.rescue_run, name="rescue"),
    path("w/<slug:slug>/runs/<int:pk>/cancel", views.cancel_run, name="cancel"),
    # Bulk actions by filter
    path("w/<slug:slug>/runs/bulk/preview", bulk_views.bulk_preview, name="bulk_preview"),
    path("w/<slug:slug>/runs/bulk/", bulk_views.bulk_start, name="bulk_start"),
    path("w/<slug:slug>/runs/bulk/<int:pk>", bulk_views.bulk_job, name="bulk_job"),
    path("w/<slug:slug>/runs/bulk/<int:pk>/cancel", bulk_views.bulk_cancel, name="bulk_cancel"),
]
