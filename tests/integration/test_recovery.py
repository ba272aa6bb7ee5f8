"""Recovery that needs no single beat and survives a database restart, on real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from pipeline import engine
from pipeline.models import Run, Sweep
from tests.engine_helpers import card, chain
from tests.integration.private_postgres import PrivatePostgres
from tests.integration.processes import ROOT, Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_without_beat(
    transactional_db: None, broker: redis.Redis, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    running = Stack()
    yield running
    running.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(running.logs())


def test_a_killed_workers_run_is_recovered_by_another_worker_while_beat_is_down(
    story: Any, stack_without_beat: Stack
) -> None:
    stack = stack_without_beat
    assert stack.beat is None  # no beat in this story, at any point
    workers = stack.start_workers(2, concurrency=1)
    feature = card(story.workspace, description="Slow. [offline:delay=6@write-architecture]")
    run = engine.launch_pipeline(feature, story.owner).run
    wait_until(
        lambda: Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).exists(),
        timeout=60,
        what="a worker to claim the run",
    )
    run.refresh_from_db()
    holder = next(w for w in workers if run.worker_id.startswith(stack.nodename(w)))
    (survivor,) = [w for w in workers if w is not holder]

    holder.kill()  # SIGKILL: no goodbye, its message stays unacknowledged in Redis

    def done() -> bool:
        feature.refresh_from_db()
        return (
            feature.stage.key == "done"
            and not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()
        )

    wait_until(done, timeout=120, what="the other worker to recover and finish the pipeline")
    run.refresh_from_db()
    assert (run.status, run.attempt) == (Run.Status.SUCCEEDED, 2)
    assert run.worker_id.startswith(stack.nodename(survivor))
    assert [r.status for r in chain(feature)] == ["succeeded", "succeeded"]
    sweep = Sweep.objects.get(name="recovery")
    assert sweep.by == stack.nodename(survivor)  # the surviving worker ran the sweeps


SEED = """
import json
from django.contrib.auth.models import User
from features.actions import do_create_workspace
from pipeline import engine
owner = User.objects.create(username="restart")
workspace = do_create_workspace(name="Restart", template="quick", owner=owner)
ids = []
for i in range({count}):
    created = engine.create_feature(
        workspace, title=f"Restart {{i}}", user=owner, launch=True,
        description="[offline:delay=0.6]",
    )
    ids.append(created.feature.pk)
print(json.dumps(ids))
"""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="restarts a PostgreSQL server")
def test_a_postgresql_restart_leaves_15_in_flight_pipelines_finished(
    broker: redis.Redis, request: pytest.FixtureRequest
) -> None:
    server = PrivatePostgres()
    stack: Stack | None = None
    try:
        server.start()
        server.create_database("runway")
        url = server.url("runway")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": url,
            "REDIS_URL": settings.REDIS_URL,
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity=0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        dsn = url.replace("postgres://", "postgresql://", 1)

        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                return list(conn.execute(sql).fetchall())

        def reported(nodename: str) -> bool:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pipeline_workerheartbeat WHERE worker_id = %s", (nodename,)
                ).fetchone()
            return found is not None

        stack = Stack({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
        for _ in range(2):
            stack.start_worker(concurrency=2, loglevel="WARNING", reported=reported)
        seeded = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SEED.format(count=15)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        ids = json.loads(seeded.stdout.strip().splitlines()[-1])
        assert len(ids) == 15

        def succeeded() -> int:
            return int(query("SELECT count(*) FROM pipeline_run WHERE status = 'succeeded'")[0][0])

        wait_until(lambda: succeeded() >= 4, timeout=120, what="some runs to finish first")
        server.stop()  # connections terminated mid-claim, mid-step, mid-completion
        threading.Event().wait(2)  # the outage itself
        server.start()

        def all_done() -> bool:
            try:
                with psycopg.connect(dsn, connect_timeout=3) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM features_feature f JOIN features_stage s "
                        "ON s.id = f.stage_id WHERE s.key = 'done' AND f.id = ANY(%s)",
                        (ids,),
                    ).fetchone()
            except psycopg.OperationalError:
                return False
            return row is not None and int(row[0]) == 15

        wait_until(all_done, timeout=300, what="all 15 pipelines to finish without a person")
        # The restart landed on work in flight (claims, steps, completions), and none failed.
        assert any("database unavailable" in w.log() for w in stack.workers)
        statuses = dict(query("SELECT status, count(*) FROM pipeline_run GROUP BY status"))
        assert statuses == {"succeeded": 30}, statuses  # two stages each, nothing failed
    finally:
        if stack is not None:
            stack.stop()
            if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
                print(stack.logs())
        server.remove()
