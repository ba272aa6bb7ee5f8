"""ASGI entry point: plain HTTP through Django, websockets through Channels (members only)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

# Production unless development or tests are chosen explicitly (make run, pytest): a
# forgotten variable must never mean DEBUG on and a public secret key.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
# Before the settings load: the web process borrows database connections from a fixed-size pool
# instead of keeping one per thread (config/settings/base.py).
os.environ.setdefault("RUNWAY_PROCESS", "web")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: the routing imports models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.body_limit import body_limit  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused before Django reads them (413, JSON on /api/).
        "http": body_limit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
