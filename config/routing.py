from __future__ import annotations

from django.urls import path

from pipeline.consumers import BoardConsumer, CardConsumer, RunLogConsumer

websocket_urlpatterns = [
    path("ws/workspaces/<slug:slug>/", BoardConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunLogConsumer.as_asgi()),
    path("ws/features/<int:pk>/", CardConsumer.as_asgi()),
]
