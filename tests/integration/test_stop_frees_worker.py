"""Stop frees the worker within 5 s, whatever the provider is stuck on: a one-process worker is
busy with card A's step (a server gone silent, a CLI whose child holds its output open), card B
waits behind it; Stop on A lets B's run start within 5 s — not at A's step timeout (300 s)."""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from features.models import Feature
from pipeline import engine
from pipeline.models import Run, RunLog
from tests import fake_llm
from tests.engine_helpers import card
from tests.fake_llm import FakeLLM, fault, hang
from tests.integration.processes import Stack, wait_until

pytestmark = pytest.mark.integration

FREED_WITHIN = timedelta(seconds=5)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    yield from fake_llm.serve(monkeypatch)


def _first_run(feature: Feature) -> Run:
    return Run.objects.filter(feature=feature).order_by("id").first()  # type: ignore[return-value]


def _stop_and_time_the_next_claim(story, stuck: Feature, waiting: Feature) -> timedelta:
    """Stop `stuck`'s pipeline; how long until `waiting`'s run was claimed by the worker."""
    stopped_at: datetime = timezone.now()
    assert engine.stop_pipeline(stuck, story.owner) == 1
    claimed = wait_until(
        lambda: Run.objects.filter(feature=waiting, claimed_at__isnull=False).first(),
        timeout=120,
        what="the waiting card's run to be claimed",
    )
    wait_until(
        lambda: RunLog.objects.filter(
            run=_first_run(stuck), message__startswith="Step interrupted"
        ).exists(),
        timeout=30,
        what="the stopped step to say it was interrupted",
    )
    return claimed.claimed_at - stopped_at


@pytest.mark.parametrize(
    ("protocol", "silence"),
    [
        ("anthropic", hang(600)),  # silent before sending any header
        ("openai", fault("stall", seconds=600, after=2)),  # silent in the middle of the stream
    ],
    ids=["anthropic-silent-before-headers", "openai-silent-mid-stream"],
)
def test_stop_on_a_silent_server_lets_the_next_card_start_within_5_s(
    story, stack: Stack, fake: FakeLLM, protocol, silence
):
    fake_llm.use_provider(story.workspace, protocol, "model-test")
    stack.env.update(
        {
            "ANTHROPIC_API_KEY": "sk-test-key",
            "ANTHROPIC_BASE_URL": fake.url,
            "OPENAI_API_KEY": "sk-test-openai",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
        }
    )
    stack.start_worker(concurrency=1)
    fake.queue(silence)
    stuck = card(story.workspace, "Stuck on a silent server")
    waiting = card(story.workspace, "Waiting behind it")
    engine.launch_pipeline(stuck, story.owner)
    wait_until(lambda: fake.in_flight == 1, timeout=60, what="the request to reach the server")
    engine.launch_pipeline(waiting, story.owner)

    assert _stop_and_time_the_next_claim(story, stuck, waiting) < FREED_WITHIN
    stuck_run = _first_run(stuck)
    assert stuck_run.status == Run.Status.CANCELLED
    assert stuck_run.attempt == 1  # not retried: a stopped run stays stopped


# A CLI that starts a child sharing its stdout, then both sleep: without killing the whole
# process group, the worker would wait until the child lets go of the pipe.
CLI = """
import json, os, subprocess, sys, time
prompt = sys.stdin.read()
if "Hold the worker" in prompt:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(sys.argv[1], "w") as pids:
        pids.write(f"{os.getpid()} {child.pid}")
    time.sleep(600)
if '"tasks"' in prompt:
    print(json.dumps({"tasks": [{"title": "Only task", "description": "d", "depends_on": []}]}))
else:
    print("# Doc\\n\\n" + "\\n".join(f"## {s}\\n\\nok\\n" for s in
          ("Overview", "Components", "Data model", "Risks")))
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_stop_on_a_cli_with_a_child_lets_the_next_card_start_within_5_s(story, stack: Stack):
    pids = Path(tempfile.mkdtemp(prefix="runway-cli-")) / "pids"
    fake_llm.use_provider(story.workspace, "cli", "")
    stack.env["RUNWAY_CLI_COMMAND"] = shlex.join([sys.executable, "-c", CLI, str(pids)])
    stack.start_worker(concurrency=1)
    stuck = card(story.workspace, "Stuck on a CLI", description="Hold the worker.")
    waiting = card(story.workspace, "Waiting behind it", description="Answer at once.")
    engine.launch_pipeline(stuck, story.owner)
    wait_until(lambda: pids.exists() and pids.read_text(), timeout=60, what="the CLI to start")
    cli_pid, child_pid = map(int, pids.read_text().split())
    engine.launch_pipeline(waiting, story.owner)

    assert _stop_and_time_the_next_claim(story, stuck, waiting) < FREED_WITHIN
    # The command and the child it started are gone, not orphaned.
    wait_until(
        lambda: not _alive(cli_pid) and not _alive(child_pid),
        timeout=10,
        what="the CLI's process group to be killed",
    )
    assert _first_run(stuck).status == Run.Status.CANCELLED
