from __future__ import annotations

from django.urls import path

from features.consumers import BoardConsumer

websocket_urlpatterns = [
    path("ws/workspaces/<slug:slug>/", BoardConsumer.as_asgi()),
]
