from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from tests.integration.processes import Stack


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    # Messages left by earlier tests point at rows that no longer exist: start empty.
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    yield client
    client.close()


@pytest.fixture
def stack(
    transactional_db: None, broker: redis.Redis, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    running = Stack()
    running.start_beat()
    yield running
    running.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(running.logs())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
