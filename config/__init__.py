from __future__ import annotations

# Import the Celery app with Django so @shared_task binds to it and on_commit enqueues work.
from config.celery import app as celery_app

__all__ = ["celery_app"]
