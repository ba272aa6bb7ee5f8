"""A command-line LLM: the prompt goes to the configured command's stdin, the answer comes back
on stdout (``RUNWAY_CLI_COMMAND``, e.g. ``claude -p``; split with shlex, never a shell).

A non-zero exit is permanent (with the tail of stderr, which usually says why); a command that
outlives the step's timeout is killed and the step retried. Structured outputs are JSON on
stdout, validated with one repair attempt like the other providers.

The command runs in a process group of its own, and Stop, the step's timeout and the end of
the call kill the whole group: a CLI's own children (tools, language servers) would otherwise
hold its stdout open and keep the worker waiting long after the command itself was killed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading

from django.conf import settings

from pipeline.providers import structured
from pipeline.providers.base import (
    PermanentProviderError,
    StepCancelled,
    StepOutput,
    StepRequest,
    TransientProviderError,
    Usage,
)


class CliProvider:
    name = "cli"
    concurrency_limited = True

    def default_model(self) -> str:
        return ""

    def command(self) -> list[str]:
        raw = str(settings.RUNWAY_CLI_COMMAND).strip()
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            raise PermanentProviderError(
                f"RUNWAY_CLI_COMMAND={raw!r} cannot be parsed ({exc}); fix it and Retry."
            ) from None
        if not argv:
            raise PermanentProviderError("Set RUNWAY_CLI_COMMAND (e.g. 'claude -p') to use cli.")
        return argv

    def generate(self, request: StepRequest) -> StepOutput:
        argv = self.command()
        output = request.output if structured.is_structured(request.output) else None
        prompt = request.prompt + (structured.instructions(output) if output else "")
        text = self._call(argv, prompt, request)
        if output is None:
            if not text.strip():
                raise PermanentProviderError(
                    f"{argv[0]} printed nothing for {request.skill_slug}; check the command."
                )
            return StepOutput(text=text, usage=Usage())
        try:
            data = structured.validate(output, structured.parse_json_text(text))
        except structured.InvalidOutput as exc:
            request.on_log(f"Output did not match the {output} schema ({exc}); asking once")
            repair = (
                f"{prompt}\n\nYour previous answer was:\n{text[:4000]}\n\n"
                f"{structured.repair_prompt(output, str(exc))}"
            )
            text = self._call(argv, repair, request)
            try:
                data = structured.validate(output, structured.parse_json_text(text))
            except structured.InvalidOutput as again:
                raise PermanentProviderError(
                    f"{argv[0]}'s {output} output for {request.skill_slug} was still invalid "
                    f"after one repair: {again}. Adjust the skill's prompt or the command."
                ) from None
        return structured.to_output(output, data, Usage())

    def _call(self, argv: list[str], prompt: str, request: StepRequest) -> str:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group, killed as one
            )
        except OSError as exc:
            raise PermanentProviderError(
                f"Could not start {argv[0]!r} ({exc.strerror}); check RUNWAY_CLI_COMMAND."
            ) from None
        # Stop kills the command too: a watcher waits on the cancel event while we wait on it.
        finished = threading.Event()

        def kill_on_cancel() -> None:
            while not finished.is_set():
                if request.cancelled.wait(0.2):
                    kill_group(process)
                    return

        watcher = threading.Thread(target=kill_on_cancel, daemon=True)
        watcher.start()
        try:
            stdout, stderr = process.communicate(prompt, timeout=request.timeout_seconds)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.communicate()
            raise TransientProviderError(
                f"{argv[0]} did not finish within the step's timeout of "
                f"{request.timeout_seconds:g} s"
            ) from None
        finally:
            finished.set()
        if request.cancelled.is_set():
            raise StepCancelled
        if process.returncode != 0:
            tail = " ".join(stderr.strip().splitlines()[-5:])[-500:] or "(no stderr)"
            raise PermanentProviderError(
                f"{argv[0]} exited with status {process.returncode}: {tail}"
            )
        return stdout


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the command's whole process group (its pid is the group id: start_new_session).

    Only while the command is not reaped: until then its pid (the group's id) cannot belong to
    anyone else's process."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
