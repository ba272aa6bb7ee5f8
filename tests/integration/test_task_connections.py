"""A worker's pool processes keep their PostgreSQL connection from one run to the next
(pipeline/task_connections.py), and replace one the server dropped before a run uses it."""

from __future__ import annotations

import time

import psutil  # type: ignore[import-untyped]
import pytest
from django.contrib.auth.models import User
from django.db import connection

from features.models import Feature, Workspace
from pipeline import engine
from pipeline.models import Run
from tests.engine_helpers import card
from tests.integration.processes import Process, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="about PostgreSQL's per-connection processes"
    ),
]


def _pool_ports(worker: Process) -> set[int]:
    """The local ports of the worker's pool processes' connections to PostgreSQL, once they
    are at rest: a run's heartbeat thread drops its own connection within a cancel check
    (0.5 s here) of the run's end, so the set must hold still for a while."""
    seen: list[tuple[float, set[int]]] = []

    def settled() -> set[int] | None:
        ports: set[int] = set()
        for child in psutil.Process(worker.popen.pid).children(recursive=True):
            for socket in child.net_connections(kind="tcp"):
                if socket.raddr and socket.raddr.port == 5432 and socket.status == "ESTABLISHED":
                    ports.add(socket.laddr.port)
        now = time.monotonic()
        if seen and seen[-1][1] != ports:
            seen.clear()
        seen.append((now, ports))
        return ports if now - seen[0][0] >= 1.5 else None

    wait_until(lambda: settled() is not None, timeout=30, what="the pool's connections to settle")
    return seen[-1][1]


def _run_pipelines(workspace: Workspace, owner: User, count: int) -> list[Feature]:
    cards = [card(workspace, title=f"Card {i}") for i in range(count)]
    for feature in cards:
        engine.launch_pipeline(feature, owner)
    wait_until(
        lambda: (
            not Run.objects.filter(feature__in=cards, status__in=Run.ACTIVE_STATUSES).exists()
            and Run.objects.filter(feature__in=cards, status=Run.Status.SUCCEEDED).count()
            == 2 * count
        ),
        timeout=90,
        what=f"{count} pipelines to finish",
    )
    return cards


def test_pool_processes_keep_one_connection_across_runs(story, stack):
    worker = stack.start_worker(concurrency=2)
    _run_pipelines(story.workspace, story.owner, 4)
    before = _pool_ports(worker)
    # Each pool process that ran a run still holds its connection (Celery's Django fixup
    # alone would have closed it after the run).
    assert before, "the pool processes hold no database connection between runs"
    _run_pipelines(story.workspace, story.owner, 10)
    assert _pool_ports(worker) == before  # the same TCP connections: nothing reconnected


def test_a_connection_the_server_dropped_is_replaced_before_the_next_run(story, stack):
    worker = stack.start_worker(concurrency=2)
    _run_pipelines(story.workspace, story.owner, 2)
    ports = _pool_ports(worker)
    assert ports
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s) AND datname = current_database()",
            [sorted(ports)],
        )
        assert [row[0] for row in cursor.fetchall()] == [True] * len(ports)
    cards = _run_pipelines(story.workspace, story.owner, 4)
    # No run failed on the dead connection and came back for a second attempt, and no claim
    # met it either (that task would have been sent again, "database unavailable").
    assert set(Run.objects.filter(feature__in=cards).values_list("attempt", flat=True)) == {1}
    assert "database unavailable" not in worker.log()
    assert not _pool_ports(worker) & ports
