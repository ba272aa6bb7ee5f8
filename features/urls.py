from __future__ import annotations

from django.urls import path

from features import views

app_name = "features"

urlpatterns = [
    # Workspaces
    path("", views.home, name="home"),
    path("w/<slug:slug>/", views.board, name="board"),
    # Cards
    path("features/<int:pk>/", views.feature_detail, name="detail"),
]
