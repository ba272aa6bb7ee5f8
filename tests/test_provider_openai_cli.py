"""The OpenAI-compatible provider (against the local server) and the CLI provider (a real
subprocess): same outputs, same error classes, the same single repair."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import engine
from pipeline.providers import get_provider
from pipeline.providers.base import (
    PermanentProviderError,
    StepRequest,
    TransientProviderError,
)
from tests import fake_llm
from tests.engine_helpers import card, chain
from tests.fake_llm import FakeLLM, error, hang, text
from tests.integration.processes import wait_until


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    yield from fake_llm.serve(monkeypatch)


def _request(output: str = "document", **overrides: Any) -> StepRequest:
    values: dict[str, Any] = {
        "skill_slug": "generate-tasks" if output == "tasks" else "write-architecture",
        "output": output,
        "artifact_name": "tasks.json" if output == "tasks" else "architecture.md",
        "prompt": "Write markdown with these `##` sections: Overview, Risks.",
        "inputs": {},
        "sections": ["Overview", "Risks"],
        "model": "llama-test",
        "timeout_seconds": 10,
        "attempt": 1,
    }
    return StepRequest(**(values | overrides))


# --- OpenAI-compatible -----------------------------------------------------------------------


def test_it_runs_a_whole_pipeline_on_an_openai_compatible_server(story, fake, eager):
    fake_llm.use_provider(story.workspace, "openai", "llama-test")
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)

    assert [r.status for r in chain(feature)] == ["succeeded", "succeeded"]
    assert feature.children.count() == 3
    architecture = chain(feature)[0]
    assert (architecture.input_tokens, architecture.output_tokens) == (1000, 500)
    asked = fake.requests[-1]
    assert asked.path == "/v1/chat/completions"
    assert asked.headers["authorization"] == "Bearer sk-test-openai"
    assert asked.body["response_format"] == {"type": "json_object"}


def test_openai_malformed_json_is_repaired_once(fake):
    fake.queue(text("Here are your tasks: {not json"))
    output = get_provider("openai").generate(_request("tasks"))
    assert len(output.data["tasks"]) == 3
    repair = fake.requests[-1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Here are your tasks: {not json"}
    assert "Your previous answer was rejected: not valid JSON" in repair[-1]["content"]


def test_openai_malformed_twice_fails_permanently(fake):
    fake.queue(text("nope"), text('{"tasks": []}'))
    with pytest.raises(PermanentProviderError, match="still invalid after one repair: tasks"):
        get_provider("openai").generate(_request("tasks"))


def test_openai_errors_are_classified(fake):
    provider = get_provider("openai")
    fake.queue(error(429, "rate_limit", "busy", retry_after="7"))
    with pytest.raises(TransientProviderError) as limited:
        provider.generate(_request())
    assert limited.value.retry_after == 7.0
    fake.queue(error(401, "invalid_api_key"))
    with pytest.raises(PermanentProviderError, match=r"\(401\): set OPENAI_API_KEY"):
        provider.generate(_request())
    fake.queue(error(503, "unavailable"))
    with pytest.raises(TransientProviderError, match=r"server error \(503\)"):
        provider.generate(_request())
    fake.queue(hang(30))
    with pytest.raises(TransientProviderError, match="within the step's timeout of 1 s"):
        provider.generate(_request(timeout_seconds=1))


def test_openai_needs_a_key_only_for_openai_itself(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PermanentProviderError, match="set OPENAI_API_KEY"):
        get_provider("openai").generate(_request())


# --- CLI ---------------------------------------------------------------------------------------

# A stand-in for `claude -p`: reads the prompt on stdin and answers on stdout.
FAKE_CLI = """
import json, sys, time
prompt = sys.stdin.read()
mode = sys.argv[1]
if mode == "fail":
    print("warming up", file=sys.stderr); print("error: not logged in", file=sys.stderr)
    sys.exit(3)
if mode == "slow":
    time.sleep(30)
if mode == "slow-with-child":  # a child that keeps our stdout open after we are killed
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    print(child.pid, file=sys.stderr, flush=True)
    open(sys.argv[2], "w").write(str(child.pid))
    time.sleep(30)
if mode == "repair" and "previous answer was rejected" not in prompt:
    print("sure! {oops"); sys.exit(0)
if '"tasks"' in prompt:
    print(json.dumps({"tasks": [{"title": "Only task", "description": "d", "depends_on": []}]}))
else:
    print("# Doc\\n\\n## Overview\\n\\nok\\n\\n## Risks\\n\\nnone")
"""


def cli_command(mode: str, *args: str) -> str:
    return shlex.join([sys.executable, "-c", FAKE_CLI, mode, *args])


def test_the_cli_provider_pipes_the_prompt_and_reads_the_answer(settings):
    settings.RUNWAY_CLI_COMMAND = cli_command("ok")
    provider = get_provider("cli")
    assert "## Risks" in provider.generate(_request()).text
    assert provider.generate(_request("tasks")).data["tasks"][0]["title"] == "Only task"


def test_the_cli_provider_repairs_once(settings):
    settings.RUNWAY_CLI_COMMAND = cli_command("repair")
    lines: list[str] = []
    output = get_provider("cli").generate(_request("tasks", on_log=lines.append))
    assert output.data["tasks"][0]["title"] == "Only task"
    assert lines[0].startswith("Output did not match the tasks schema")


def test_a_failing_command_is_permanent_with_the_end_of_stderr(settings):
    settings.RUNWAY_CLI_COMMAND = cli_command("fail")
    with pytest.raises(PermanentProviderError, match=r"exited with status 3: .*not logged in"):
        get_provider("cli").generate(_request())


def test_a_command_past_the_timeout_is_killed_and_retried(settings):
    settings.RUNWAY_CLI_COMMAND = cli_command("slow")
    with pytest.raises(TransientProviderError, match="did not finish within the step's timeout"):
        get_provider("cli").generate(_request(timeout_seconds=1))


def test_a_missing_command_says_which_setting_to_fix(settings):
    settings.RUNWAY_CLI_COMMAND = "/nonexistent/llm -p"
    with pytest.raises(PermanentProviderError, match="check RUNWAY_CLI_COMMAND"):
        get_provider("cli").generate(_request())


def test_a_timed_out_command_is_killed_with_its_children(settings, tmp_path):
    pid_file = tmp_path / "child"
    settings.RUNWAY_CLI_COMMAND = cli_command("slow-with-child", str(pid_file))
    started = time.monotonic()
    with pytest.raises(TransientProviderError, match="did not finish within the step's timeout"):
        get_provider("cli").generate(_request(timeout_seconds=2))
    # Without killing the process group, reading the output waits for the child (30 s).
    assert time.monotonic() - started < 20
    child = int(pid_file.read_text())
    # SIGKILL is delivered asynchronously: on a loaded machine the child may still be
    # scheduled for a moment. Dead (or a zombie) within 5 s; a survivor would live 30 s.
    wait_until(
        lambda: not Path(f"/proc/{child}").exists() or "Z" in _state(child),
        timeout=5,
        what="the command's child to be killed",
    )


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"
