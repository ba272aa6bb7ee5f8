from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.integration.processes import Stack


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
