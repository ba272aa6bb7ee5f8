"""The Celery app. Tasks stay thin (pipeline/tasks.py); the engine owns the logic."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("runway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
