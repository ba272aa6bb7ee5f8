"""`manage.py serve` (what `make run` starts): the Procfile's processes under supervisord.

A dead process is restarted while the others keep running, and `manage.py processes` shows,
restarts and adds them by pid. The test starts the real command against the test database
and the test Redis on a free port, and stops it with SIGTERM as a service manager would.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from features.models import Feature
from pipeline import engine
from pipeline.models import Run, WorkerHeartbeat
from tests.engine_helpers import card
from tests.integration.processes import FAST_ENGINE, Process, shared_database_url, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Served:
    """A running `manage.py serve` and the documented commands that manage it."""

    def __init__(self, var_dir: Path) -> None:
        self.port = free_port()
        self.var_dir = var_dir
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": shared_database_url(),
            "PYTHONUNBUFFERED": "1",
            **FAST_ENGINE,
            "RUNWAY_VAR_DIR": str(var_dir),
            "RUNWAY_HOST": "127.0.0.1",
            "RUNWAY_PORT": str(self.port),
            # JSON lines, so a test can follow a run through the processes' output.
            "RUNWAY_LOG_FORMAT": "json",
        }
        self.process = Process(
            "serve", [sys.executable, "manage.py", "serve", "--no-seed"], self.env
        )
        self.seen_pids: set[int] = set()

    def url(self, path: str = "/healthz") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answers(self) -> bool:
        """Whether the web answers HTTP at all (healthz may say 503 while a worker restarts)."""
        try:
            with urllib.request.urlopen(self.url(), timeout=5) as response:  # noqa: S310
                return bool(response.status)
        except urllib.error.HTTPError as exc:
            return bool(exc.code)
        except OSError:
            return False

    def processes(self, *args: str) -> str:
        """`manage.py processes ARGS` (in-process, on this serve's RUNWAY_VAR_DIR): its output."""
        out = io.StringIO()
        call_command("processes", *args, stdout=out)
        for word in out.getvalue().split():
            if word.isdigit():
                self.seen_pids.add(int(word))
        return out.getvalue().strip()

    def alive_worker(self, *, other_than: int | None = None) -> WorkerHeartbeat | None:
        """The heartbeat of the Procfile's `worker` as supervisord knows it now, if it beats."""
        try:
            pid = int(self.processes("pid", "worker"))
        except CommandError:  # between a death and the restart
            return None
        if pid == other_than:
            return None
        return WorkerHeartbeat.alive().filter(pid=pid).first()

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def served(transactional_db: None, broker: object, tmp_path: Path, settings) -> Iterator[Served]:
    settings.VAR_DIR = tmp_path / "var"  # where `manage.py processes` finds this serve
    running = Served(settings.VAR_DIR)
    try:
        wait_until(
            lambda: running.answers() or not running.process.alive(),
            timeout=90,
            what="the web to answer",
        )
        assert running.process.alive(), running.process.log()[-4000:]
        wait_until(running.alive_worker, timeout=90, what="the worker's first heartbeat")
        yield running
    finally:
        running.stop()
        # serve stops every process it started: none of the pids we saw may be left behind.
        leftovers = [pid for pid in running.seen_pids if pid_alive(pid)]
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"serve left processes running: {leftovers}"


# One serve for the whole story: starting and stopping it costs half a minute on a busy machine.
def test_it_restarts_a_killed_worker_and_adds_or_restarts_one_alone(served: Served, story) -> None:
    worker_pid = int(served.processes("pid", "worker"))
    first = served.alive_worker()
    assert first is not None
    assert first.pid == worker_pid
    served.processes()  # remember every pid, to check none outlives serve

    os.kill(worker_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    feature = card(story.workspace, title="Launched while the worker was down")
    engine.launch_pipeline(feature, story.owner)

    def restarted() -> WorkerHeartbeat | None:
        assert served.answers(), "the web stopped answering after the worker died"
        return served.alive_worker(other_than=worker_pid)

    replacement = wait_until(restarted, timeout=60, what="a new worker's heartbeat")
    assert time.monotonic() - killed_at < 20
    assert not pid_alive(worker_pid)
    assert replacement.pid != worker_pid

    def finished() -> bool:
        feature.refresh_from_db()
        return (
            feature.stage.key == "done"
            and not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()
        )

    wait_until(finished, timeout=90, what="the pipeline launched meanwhile to finish")
    assert set(Run.objects.filter(feature=feature).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert served.answers()
    log = (served.var_dir / "supervisor" / "supervisord.log").read_text()
    assert "exited: worker (terminated by SIGKILL; not expected)" in log
    assert Feature.objects.get(pk=feature.pk).children.exists()  # its task cards

    # RUNWAY_LOG_FORMAT=json: the worker's lines for the run carry its ids.
    first_run = Run.objects.filter(feature=feature).order_by("id").first()
    assert first_run is not None

    def step_line() -> dict | None:
        return next(
            (
                record
                for line in served.process.log().splitlines()
                if line.startswith("{")
                and (record := json.loads(line)).get("run_id") == first_run.pk
                and record["message"].startswith("Step 1/")
            ),
            None,
        )

    step = wait_until(step_line, timeout=30, what="the worker's JSON line for the step")
    assert step["process"] == "worker"
    assert step["card_id"] == feature.pk
    assert step["workspace_id"] == story.workspace.pk
    assert step["attempt"] == first_run.attempt
    assert step["worker_id"] == first_run.worker_id

    adds_restarts_and_removes_a_worker_alone(served)


def adds_restarts_and_removes_a_worker_alone(served: Served) -> None:
    web_pid = int(served.processes("pid", "web"))
    worker_pid = int(served.processes("pid", "worker"))

    added = served.processes("add-worker")
    assert added.startswith("Added worker-2: pid ")
    added_pid = int(added.rsplit(" ", 1)[1])
    wait_until(
        lambda: WorkerHeartbeat.alive().filter(worker_id__startswith="worker-2@").exists(),
        timeout=60,
        what="the added worker's heartbeat",
    )
    status = served.processes()
    assert f"worker-2     RUNNING   pid {added_pid}" in status

    restarted = served.processes("restart", "worker")
    new_worker_pid = int(restarted.rsplit(" ", 1)[1])
    assert new_worker_pid != worker_pid
    assert not pid_alive(worker_pid)
    assert pid_alive(added_pid)
    assert int(served.processes("pid", "web")) == web_pid  # the others kept running

    assert served.processes("remove", "worker-2") == "Removed worker-2"
    assert not pid_alive(added_pid)
    assert "worker-2" not in served.processes()
