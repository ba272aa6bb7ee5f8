"""Where a benchmark runs: the machine's PostgreSQL and Redis when they answer, else the
embedded defaults (SQLite file + embedded Redis), always on a fresh database of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _answers(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


@dataclass
class Services:
    database_url: str
    redis_url: str
    description: str
    _cleanup: list[str] = field(default_factory=list)
    _embedded: object | None = None

    def close(self) -> None:
        from django.db import connections

        # This process's own connection would keep its database from being dropped.
        connections.close_all()
        if self._embedded is not None:
            self._embedded.stop()  # type: ignore[attr-defined]
        for name in self._cleanup:
            subprocess.run(
                # --force: a stopped worker's server processes may still be closing (workers
                # keep their connections), which would otherwise leave the database behind.
                ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", name],
                check=False,
                capture_output=True,
            )


def prepare(*, own_redis: bool = False) -> Services:
    """Pick the services, point this process (and its children) at them, set Django up."""
    stamp = f"{int(time.time())}_{os.getpid()}"
    cleanup: list[str] = []
    if os.environ.get("DATABASE_URL"):
        database_url, db_text = os.environ["DATABASE_URL"], "DATABASE_URL"
    elif _answers("127.0.0.1", 5432):
        name = f"runway_bench_{stamp}"
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
        cleanup.append(name)
        database_url, db_text = f"postgres://postgres@127.0.0.1:5432/{name}", "PostgreSQL"
    else:
        path = Path(tempfile.gettempdir()) / f"runway-bench-{stamp}.sqlite3"
        database_url, db_text = f"sqlite:///{path}", "SQLite (embedded default)"

    embedded = None
    if own_redis or not (os.environ.get("REDIS_URL") or _answers("127.0.0.1", 6379)):
        from config.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="runway-bench-")) / "redis.sock")
        embedded.start()
        redis_url, redis_text = embedded.url, "embedded Redis"
    else:
        redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"
        redis_text = "Redis"

    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        RUNWAY_OFFLINE_DELAY_SECONDS=os.environ.get("RUNWAY_OFFLINE_DELAY_SECONDS", "0"),
        DJANGO_ALLOW_ASYNC_UNSAFE="true",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return Services(database_url, redis_url, f"{db_text} + {redis_text}", cleanup, embedded)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
