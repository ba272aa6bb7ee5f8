"""RUNWAY_LOG_FORMAT=json: one JSON object per line, with the ids of the run being worked on.

The logging configuration under test is the one settings build (config.logs.logging_config),
applied for the test with its stream pointed at a buffer.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from config.logs import log_context, logging_config, process_name
from pipeline import engine
from pipeline.models import Run
from tests.conftest import Story
from tests.engine_helpers import card


def configured(log_format: str) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    config = logging_config(log_format, "INFO")
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        yield stream
    finally:
        logging.config.dictConfig(settings.LOGGING)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    yield from configured("json")


@pytest.fixture
def plain_log() -> Iterator[io.StringIO]:
    yield from configured("plain")


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_it_writes_one_json_object_per_line_with_the_blocks_ids(json_log: io.StringIO) -> None:
    with log_context(run_id=7, card_id=15, workspace_id=1, attempt=2, worker_id="w@host/42"):
        logging.getLogger("pipeline.test").warning("Step %s of %s", 1, 2)
    logging.getLogger("pipeline.test").info("outside any run")

    inside, outside = records(json_log)
    assert inside["message"] == "Step 1 of 2"
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "pipeline.test"
    assert inside["process"]
    assert {
        k: inside[k] for k in ("run_id", "card_id", "workspace_id", "attempt", "worker_id")
    } == {
        "run_id": 7,
        "card_id": 15,
        "workspace_id": 1,
        "attempt": 2,
        "worker_id": "w@host/42",
    }
    assert "run_id" not in outside


def test_it_keeps_a_traceback_inside_the_line(json_log: io.StringIO) -> None:
    try:
        raise ValueError("bad step")
    except ValueError:
        logging.getLogger("pipeline.test").exception("step crashed", extra={"run_id": 3})

    (line,) = records(json_log)
    assert line["run_id"] == 3
    assert "ValueError: bad step" in line["exc_info"]


def test_it_follows_a_run_through_the_executor(
    story: Story, eager: Any, json_log: io.StringIO
) -> None:
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)

    first = Run.objects.filter(feature=feature).order_by("id").first()
    assert first is not None
    assert first.status == Run.Status.SUCCEEDED
    lines = [r for r in records(json_log) if r.get("run_id") == first.pk]
    step = next(r for r in lines if r["message"].startswith("Step 1/"))
    assert step["card_id"] == feature.pk
    assert step["workspace_id"] == story.workspace.pk
    assert step["attempt"] == 1
    assert step["worker_id"] == first.worker_id


def test_it_writes_plain_lines_for_people_with_the_ids_at_the_end(plain_log: io.StringIO) -> None:
    with log_context(run_id=7, card_id=15):
        logging.getLogger("pipeline.test").info("Step 1/2")

    line = plain_log.getvalue().strip()
    assert line.endswith("INFO pipeline.test: Step 1/2 [run=7 card=15]")


def test_it_refuses_an_unknown_log_format() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "RUNWAY_LOG_FORMAT": "xml",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "RUNWAY_LOG_FORMAT='xml' is not one of plain, json" in result.stderr


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/srv/.venv/bin/daphne", "-p", "8000", "config.asgi:application"], "web"),
        (["/srv/.venv/lib/python3.11/site-packages/daphne/__main__.py", "-p", "1"], "web"),
        (["/srv/.venv/bin/celery", "-A", "config", "worker", "-Q", "runway"], "worker"),
        (["/usr/lib/python3/site-packages/celery/__main__.py", "-A", "config", "beat"], "beat"),
        (["manage.py", "pipeline", "launch", "3"], "pipeline"),
    ],
)
def test_it_names_the_process_from_its_command_line(
    argv: list[str], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNWAY_PROCESS", raising=False)
    assert process_name(argv) == name
    monkeypatch.setenv("RUNWAY_PROCESS", "worker-2")  # what make run's supervisor sets
    assert process_name(argv) == "worker-2"
