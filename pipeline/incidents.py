"""Health-check incidents start their work here, under the same rules as any launch.

The card domain (features/health.py) opens an incident when a live card's check fails and
hands it to :func:`launch_incident`, registered at start-up (features never imports the
runner). The launch is recorded as the health check's (``Run.trigger``) with no user, and
follows the incident stage's automation level and trust rules as a launch without a person
must: a ``human_approval`` stage, or one using skills nobody vetted, waits for a person's
Start; a manual stage runs nothing.
"""

from __future__ import annotations

import logging

from django.db import transaction

from features.models import Feature
from pipeline import engine
from pipeline.models import Run

logger = logging.getLogger(__name__)


def launch_incident(incident: Feature) -> Run | None:
    """Start the incident's pipeline, in the caller's transaction. None when there is nothing
    automated to run (people pick it up from the board); the incident stays open either way."""
    try:
        with transaction.atomic():  # a refusal undoes only the launch, never the incident
            return engine.launch_pipeline(incident, None, trigger=Run.Trigger.HEALTH_CHECK).run
    except engine.EngineError as exc:
        logger.info("incident #%s opened without a run: %s", incident.pk, exc)
        return None
