"""Real Celery worker and beat processes for integration tests, on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)

# Fast clocks so a killed worker is rescued in seconds, not minutes.
FAST_ENGINE = {
    "RUNWAY_HEARTBEAT_SECONDS": "1",
    "RUNWAY_CANCEL_CHECK_SECONDS": "0.5",
    "RUNWAY_RESCUE_AFTER_SECONDS": "4",
    "RUNWAY_DISPATCH_AFTER_SECONDS": "3",
    "RUNWAY_SWEEP_SECONDS": "1",
    "RUNWAY_RETRY_BASE_SECONDS": "0.2",
    "RUNWAY_OFFLINE_DELAY_SECONDS": "0",
}


def shared_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll with a deadline: the only honest way to wait for another process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = Path(tempfile.gettempdir()) / f"runway-{name}-{os.getpid()}.log"
        # Named by role and test process: a later test's "worker1" starts the file afresh, so
        # what log() returns is this process's own output only.
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._terminated = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children at once."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self) -> None:
        """Ask for a warm stop without waiting: SIGTERM to the main process only (once), so a
        worker finishes its task."""
        if self.alive() and not self._terminated:
            self._terminated = True
            self.popen.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """A warm stop: SIGTERM (unless already sent), then wait; SIGKILL after 15 s."""
        self.terminate()
        if self.alive():
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _await_worker(worker: Process, nodename: str, seen: Callable[[str], bool]) -> None:
    wait_until(
        lambda: (worker.alive() and seen(nodename)) or not worker.alive(),
        timeout=60,
        what=f"worker {nodename} to report ready",
    )
    if not worker.alive():
        raise AssertionError(f"worker exited early:\n{worker.log()[-3000:]}")


class Stack:
    """Beat plus workers against the test database and the test Redis."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": shared_database_url(),
            "PYTHONUNBUFFERED": "1",
            **FAST_ENGINE,
            **(extra_env or {}),
        }
        self.workers: list[Process] = []
        self.beat: Process | None = None
        self.web: Process | None = None
        self._web_answering: Callable[[], bool] | None = None
        self._count = 0

    def start_worker(
        self,
        concurrency: int = 2,
        *,
        extra_args: list[str] | None = None,
        loglevel: str = "INFO",
        reported: Callable[[str], bool] | None = None,
    ) -> Process:
        """A worker; returns once it wrote its heartbeat row (`reported(nodename)` checks that
        when the worker uses another database than the test's)."""
        return self.start_workers(
            1, concurrency=concurrency, extra_args=extra_args, loglevel=loglevel, reported=reported
        )[0]

    def start_workers(
        self,
        count: int,
        concurrency: int = 2,
        *,
        extra_args: list[str] | None = None,
        loglevel: str = "INFO",
        reported: Callable[[str], bool] | None = None,
    ) -> list[Process]:
        """`count` workers started side by side (each boots in a couple of seconds, mostly
        imports); returns once every one of them wrote its heartbeat row."""
        started = [
            self._spawn_worker(concurrency, extra_args=extra_args, loglevel=loglevel)
            for _ in range(count)
        ]
        from pipeline.models import WorkerHeartbeat

        def heartbeat_written(name: str) -> bool:
            return WorkerHeartbeat.objects.filter(worker_id=name).exists()

        seen = reported or heartbeat_written
        for worker, nodename in started:
            _await_worker(worker, nodename, seen)
        return [worker for worker, _ in started]

    def _spawn_worker(
        self, concurrency: int, *, extra_args: list[str] | None, loglevel: str
    ) -> tuple[Process, str]:
        self._count += 1
        nodename = f"w{self._count}-{os.getpid()}@test"
        worker = Process(
            f"worker{self._count}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                f"--loglevel={loglevel}",
                f"--concurrency={concurrency}",
                "-Q",
                "runway",
                "-n",
                nodename,
                "--without-mingle",
                "--without-gossip",
                *(extra_args or []),
            ],
            self.env,
        )
        self.workers.append(worker)
        return worker, nodename

    def start_health_worker(self, concurrency: int = 8) -> Process:
        """The health-check pool as the Procfile runs it: threads, the health queue only."""
        self._count += 1
        nodename = f"health{self._count}-{os.getpid()}@test"
        worker = Process(
            f"health{self._count}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "-Q",
                settings.RUNWAY_HEALTH_QUEUE,
                "-n",
                nodename,
                "--without-mingle",
                "--without-gossip",
            ],
            self.env,
        )
        self.workers.append(worker)
        wait_until(
            lambda: f"{nodename} ready." in worker.log() or not worker.alive(),
            timeout=60,
            what=f"health worker {nodename} to report ready",
        )
        if not worker.alive():
            raise AssertionError(f"health worker exited early:\n{worker.log()[-3000:]}")
        return worker

    def start_web(self, *, wait: bool = True) -> str:
        """A real daphne server (HTTP + websockets) on a free port; returns its base URL.
        With wait=False it returns at once (start a worker meanwhile), and `wait_for_web()`
        returns once daphne listens."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        web = Process(
            "web",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "config.asgi:application",
            ],
            self.env,
        )
        self.web = web

        def answering() -> bool:
            if not web.alive():
                raise AssertionError(f"daphne exited early:\n{web.log()[-3000:]}")
            with socket.socket() as client:
                client.settimeout(0.2)
                return client.connect_ex(("127.0.0.1", port)) == 0

        self._web_answering = answering
        if wait:
            self.wait_for_web()
        return f"http://127.0.0.1:{port}"

    def wait_for_web(self) -> None:
        assert self._web_answering is not None, "start_web() first"
        wait_until(self._web_answering, timeout=60, what="daphne to listen")

    def nodename(self, worker: Process) -> str:
        """The Celery node name a worker of this stack runs as."""
        return worker.name.replace("worker", "w", 1) + f"-{os.getpid()}@test"

    def start_beat(self) -> Process:
        schedule = Path(tempfile.mkdtemp(prefix="runway-beat-")) / "schedule"
        self.beat = Process(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                f"--schedule={schedule}",
            ],
            self.env,
        )
        return self.beat

    def stop(self) -> None:
        """The workers' and beat's warm stops at once (a worker's takes seconds), then the web
        server's: daphne stopped alongside them could wait out its 15 s for a page's socket."""
        processes = [p for p in [*self.workers, self.beat] if p is not None]
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        if self.web is not None:
            self.web.stop()

    def logs(self) -> str:
        parts = [f"--- {p.name}\n{p.log()[-4000:]}" for p in self.workers]
        if self.beat:
            parts.append(f"--- beat\n{self.beat.log()[-2000:]}")
        if self.web:
            parts.append(f"--- web\n{self.web.log()[-3000:]}")
        return "\n".join(parts)
