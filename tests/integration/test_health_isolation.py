"""Health checks on their own queue and worker pool: a host that never answers, checked 15
times at once, does not hold up a pipeline. Real worker processes as the Procfile runs them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from features import health, health_schedule
from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card
from tests.factories import FeatureFactory
from tests.http_servers import tarpit
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

CHECKS = 15


def test_a_tarpit_host_does_not_delay_a_pipelines_first_run(
    delivery_story, stack, broker: redis.Redis
) -> None:
    broker.delete(settings.RUNWAY_HEALTH_QUEUE)
    for key in broker.scan_iter("runway:health:*"):
        broker.delete(key)
    workspace = delivery_story.workspace
    live = workspace.stages.get(key="live")
    with tarpit() as pit:
        url = pit.url()
        config = health.validate_health_check({"type": "http", "url": url, "timeout": 30})
        for i in range(CHECKS):
            FeatureFactory.create(
                workspace=workspace, stage=live, title=f"Live {i}", health_check=config
            )
        stack.env["RUNWAY_OUTBOUND_ALLOW"] = "127.0.0.1/32"
        stack.env["HEALTH_CHECK_MAX_PER_WORKSPACE"] = str(CHECKS)
        stack.start_worker(concurrency=2)
        stack.start_health_worker(concurrency=8)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(settings, "HEALTH_CHECK_MAX_PER_WORKSPACE", CHECKS)
            assert health_schedule.enqueue_due_checks() == CHECKS
        # Every thread of the health pool is stuck in the tarpit.
        wait_until(lambda: pit.connections >= 8, timeout=60, what="8 checks in the tarpit")

        feature = card(workspace, title="Launched while checks hang")
        launched_at = timezone.now()
        launched = engine.launch_pipeline(feature, delivery_story.owner)
        started = wait_until(
            lambda: Run.objects.filter(pk=launched.run.pk, started_at__isnull=False).first(),
            timeout=60,
            what="the pipeline's first run to start",
        )

        assert started.started_at - launched_at <= timedelta(seconds=2)
        # The checks were still hanging the whole time: none has a result yet.
        hanging = Feature.objects.filter(stage=live, health_results__isnull=True).count()
        assert hanging == CHECKS
