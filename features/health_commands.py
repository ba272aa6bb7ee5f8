"""Command health checks: programs the server's operator defines, chosen by name.

A workspace never types a command line. The operator lists named commands in
HEALTH_CHECK_COMMANDS (JSON in the environment)::

    {"disk": {"argv": ["/usr/lib/nagios/plugins/check_disk", "-w", "10%"],
              "args": ["-p", "/", "/var"], "timeout": 30},
     "queue": ["/opt/checks/queue-depth.sh"]}

and a card's check names one, with optional arguments taken from that command's `args`
whitelist: ``{"type": "command", "command": "disk", "args": ["-p", "/var"]}``. The program runs
without a shell, without the worker's environment (no secrets: only a fixed PATH and locale),
in its own process group that a timeout kills whole, and only the first line of its output,
cut to 120 characters, is kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}
STATUS_LINE_CHARS = 120
OUTPUT_READ_BYTES = 4096
DEFAULT_TIMEOUT = 30
MAX_TIMEOUT = 300
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class OperatorCommand:
    name: str
    argv: tuple[str, ...]
    allowed_args: frozenset[str]
    timeout: int  # seconds: the most a check of this command may take


def _parse(name: object, spec: object) -> OperatorCommand:
    where = f"HEALTH_CHECK_COMMANDS[{name!r}]"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ImproperlyConfigured(f"{where}: a name is lowercase letters, digits, - and _.")
    if isinstance(spec, list):
        spec = {"argv": spec}
    if not isinstance(spec, dict) or set(spec) - {"argv", "args", "timeout"}:
        raise ImproperlyConfigured(f'{where}: use a list of arguments or {{"argv", "args"}}.')
    argv, args = spec.get("argv"), spec.get("args", [])
    timeout = spec.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ImproperlyConfigured(f"{where}: argv is a non-empty list of strings.")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ImproperlyConfigured(f"{where}: args is a list of strings.")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 300:
        raise ImproperlyConfigured(f"{where}: timeout is whole seconds, 1 to {MAX_TIMEOUT}.")
    return OperatorCommand(name, tuple(argv), frozenset(args), timeout)


def operator_commands() -> dict[str, OperatorCommand]:
    """The commands the operator defined, by name. Raises ImproperlyConfigured on a bad one."""
    raw: Any = getattr(settings, "HEALTH_CHECK_COMMANDS", None) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("HEALTH_CHECK_COMMANDS is a JSON object of named commands.")
    return {name: _parse(name, spec) for name, spec in raw.items()}


def status_line(output: bytes) -> str:
    """The first non-empty line of a program's output, printable and at most 120 characters."""
    for line in output.decode("utf-8", errors="replace").splitlines():
        text = _CONTROL.sub("", line).strip()
        if text:
            return text[: STATUS_LINE_CHARS - 1] + "…" if len(text) > STATUS_LINE_CHARS else text
    return ""


def run_command(command: OperatorCommand, args: list[str], timeout: int) -> tuple[int | None, str]:
    """Run the command with `args` appended: (exit code or None on timeout, status line).

    `timeout` seconds (capped by the command's own) covers the whole process group: a child
    that outlives the program is killed with it. Raises OSError when the program cannot start.
    """
    timeout = min(timeout, command.timeout)
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [*command.argv, *args],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=CLEAN_ENV,
            cwd="/",
            start_new_session=True,  # its own process group, so a timeout kills every child
            close_fds=True,
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            # The group we started (never anything else): children left behind go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.seek(0)
        return code, status_line(output.read(OUTPUT_READ_BYTES))
