"""pytest plugin (loaded with -p): the services the suite needs, before Django reads settings.

With REDIS_URL set (CI sets it to the machine's Redis) that server must answer, or the run
stops at once with the reason. Without it, an embedded Redis is started for the session as a
managed child process and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

# Importing the config package loads the Celery app, which defaults the settings module to dev;
# claim it for the tests first (pytest-django gives the environment precedence over the ini).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from config.embedded_redis import EmbeddedRedis
from config.redis_urls import for_redis_py

_embedded: EmbeddedRedis | None = None


def _check_redis(url: str) -> None:
    client = redis.Redis.from_url(for_redis_py(url), socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        # Each run gets an empty database: leftovers of a killed run must not leak into this one.
        client.flushdb()
    except redis.RedisError as exc:
        raise pytest.UsageError(f"REDIS_URL={url} is not reachable: {exc}") from exc
    finally:
        client.close()


# Set when this harness started the embedded Redis, so an xdist worker (which inherits the
# environment) knows the URL is the controller's private server and starts its own.
_EMBEDDED_MARK = "RUNWAY_TEST_EMBEDDED_REDIS"
REDIS_DATABASES = 16  # Redis's default `databases`


def worker_redis_url(url: str, worker: str) -> str:
    """The Redis URL an xdist worker (`gw0`, `gw1`, …) uses: the same server, database
    N+1+k (mod 16) instead of N, so parallel test processes never see, or flush, each other's
    queues, channel groups and rate-limit counters. Shape: redis://host:port/N → …/M."""
    index = int(worker.removeprefix("gw"))
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = (base + 1 + index) % REDIS_DATABASES
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, Any, Any]:
    global _embedded
    url = os.environ.get("REDIS_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if url and worker and os.environ.get(_EMBEDDED_MARK):
        url = None  # the controller's embedded server: this worker gets its own
    elif url and worker:
        url = os.environ["REDIS_URL"] = worker_redis_url(url, worker)
    if url:
        _check_redis(url)
    else:
        folder = Path(tempfile.mkdtemp(prefix="runway-redis-"))
        _embedded = EmbeddedRedis(folder / "redis.sock")
        _embedded.start()
        os.environ["REDIS_URL"] = _embedded.url
        os.environ[_EMBEDDED_MARK] = "1"
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _embedded is not None:
        _embedded.stop()
        shutil.rmtree(_embedded.socket_path.parent, ignore_errors=True)
