"""The Celery app. Tasks stay thin (pipeline/tasks.py); the engine owns the logic."""

from __future__ import annotations

import os

from celery import Celery

# Production unless development or tests are chosen explicitly (make run, pytest): a
# forgotten variable must never mean DEBUG on and a public secret key.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

app = Celery("runway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
