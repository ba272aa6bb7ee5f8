from __future__ import annotations

from django.urls import path

from pipeline import views

app_name = "pipeline"

urlpatterns = [
    # Health
    path("healthz", views.healthz, name="healthz"),
]
