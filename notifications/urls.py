from __future__ import annotations

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    # A person's settings and the workspace's webhooks
    path("notifications/", views.settings_home, name="settings_home"),
    path("w/<slug:slug>/notifications/", views.page, name="page"),
    path("w/<slug:slug>/notifications/email", views.save_settings, name="save_settings"),
    # Webhooks (owners and admins)
    path("w/<slug:slug>/webhooks/<int:pk>/", views.webhook, name="webhook"),
    path("w/<slug:slug>/webhooks/<int:pk>/resume", views.resume, name="resume"),
    path("w/<slug:slug>/webhooks/<int:pk>/delete", views.delete, name="delete"),
    path(
        "w/<slug:slug>/webhooks/<int:pk>/deliveries/<int:delivery_id>/resend",
        views.resend,
        name="resend",
    ),
    # One-click decisions from emails and Slack (GET confirms, POST acts)
    path("decide/<str:token>", views.decide_page, name="decide"),
]
