"""The embedded default's process supervisor: supervisord, configured from the Procfile.

`manage.py serve` (what `make run` starts) runs supervisord in the foreground with a config
generated here, so the Procfile stays the one list of processes. supervisord restarts any
process that dies (a process that dies again within `START_SECONDS` is retried with a growing
delay: 1 s, 2 s, 3 s ... up to `START_RETRIES` tries), writes each exit and restart in its log,
and stops everything only when it is told to. `manage.py processes` talks to it over its
XML-RPC socket (see supervisord's "XML-RPC API Documentation").

Each program runs as `/bin/sh -c "exec <Procfile line>"`: the shell expands the Procfile's
`${VAR:-default}`s and is then replaced by the program, so the pid supervisord reports (and
that `manage.py processes pid worker` prints) is the program's own. supervisord puts every
program in its own process group, so Ctrl-C in the terminal reaches supervisord alone, which
stops the programs in order.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import tempfile
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A process that exits sooner than this after starting counts as a failed start: supervisord
# retries it after 1 s, then 2 s, 3 s... and gives up (state FATAL, logged) after START_RETRIES.
START_SECONDS = 5
START_RETRIES = 10
# How long a process gets to stop on SIGTERM before SIGKILL: a Celery worker finishes the
# step it is running (warm shutdown); a cut-off step is rescued by the engine anyway.
STOP_WAIT_SECONDS = 20

_PROCFILE_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>.+)$")
# Start order (lowest first); supervisord stops in the reverse order, so the web goes first
# and the workers last, letting them finish what the web sent.
_PRIORITY = {"worker": 100, "beat": 200, "web": 300}


class SupervisionError(RuntimeError):
    """A one-line reason for a person: not running, no such process, refused."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: str


def read_procfile(path: Path) -> list[ProcessSpec]:
    """The Procfile's `name: command` lines, in order. Raises SupervisionError on a bad line."""
    specs: list[ProcessSpec] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if match is None:
            raise SupervisionError(f"{path}:{number}: expected `name: command`, got {line!r}")
        specs.append(ProcessSpec(match["name"], match["command"].strip()))
    return specs


# Longest unix socket path that works everywhere we run (macOS's sun_path is 104 bytes).
_SUN_PATH_MAX = 100


@dataclass(frozen=True)
class Paths:
    """Where supervisord keeps its config, socket and pid file (under RUNWAY_VAR_DIR)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def socket(self) -> Path:
        """The RPC socket: under `root`, or, when that path is too long for a unix socket
        (sun_path holds 108 bytes on Linux, 104 on macOS), a short one in the temp folder
        named after `root`, so a deep checkout still starts."""
        path = self.root / "supervisord.sock"
        if len(os.fsencode(path)) < _SUN_PATH_MAX:
            return path
        digest = hashlib.sha256(os.fsencode(self.root.resolve())).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"runway-supervisord-{digest}.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def log(self) -> Path:
        """supervisord's own log: every start, exit and restart (also shown in the terminal)."""
        return self.root / "supervisord.log"

    @property
    def secret(self) -> Path:
        """The RPC password of this run (the socket is the owner's alone anyway)."""
        return self.root / "supervisord.secret"

    @property
    def extra(self) -> Path:
        """Programs added while running (`manage.py processes add-worker`)."""
        return self.root / "extra"


def _escape(value: str) -> str:
    # supervisord %-interpolates its values: a literal % (Celery's `-n worker@%h`) is %%.
    return value.replace("%", "%%")


def program_section(
    name: str, command: str, *, directory: Path, priority: int = 400, autostart: bool = True
) -> str:
    """One `[program:NAME]` section running `command` (shell syntax) under supervision."""
    argv = f"/bin/sh -c {shlex.quote('exec ' + command)}"
    wait = STOP_WAIT_SECONDS if " worker" in command else 10
    return "\n".join(
        [
            f"[program:{name}]",
            f"command={_escape(argv)}",
            f"directory={_escape(str(directory))}",
            f"priority={priority}",
            f"autostart={'true' if autostart else 'false'}",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={wait}",
            # SIGKILL after the wait reaches the whole group (a worker's pool children too).
            "killasgroup=true",
            "redirect_stderr=true",
            # Output goes to the terminal, as under honcho; each log line names its process
            # (config.logs reads RUNWAY_PROCESS).
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            f'environment=RUNWAY_PROCESS="{_escape(name)}"',
            "",
        ]
    )


def write_config(specs: list[ProcessSpec], paths: Paths, *, directory: Path) -> None:
    """Write supervisord.conf (and a fresh RPC password) for this run. Workers added during an
    earlier run are forgotten: they last as long as the run that added them."""
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.secret.unlink(missing_ok=True)
    fd = os.open(paths.secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(24))
    for added in paths.extra.glob("*.conf"):
        added.unlink()
    paths.extra.mkdir(exist_ok=True)
    # supervisord warns when an [include] matches nothing.
    (paths.extra / "README.conf").write_text(
        "; Programs added while running (manage.py processes add-worker) land here.\n"
    )
    paths.config.write_text(render_config(specs, paths, directory=directory))
    paths.config.chmod(0o600)


def render_config(specs: list[ProcessSpec], paths: Paths, *, directory: Path) -> str:
    """supervisord.conf for the Procfile's processes, in the foreground, logging to stdout."""
    secret = paths.secret.read_text().strip() if paths.secret.exists() else ""
    auth = f"username=runway\npassword={_escape(secret)}\n" if secret else ""
    # As root, say so: supervisord otherwise logs a CRIT line about not dropping privileges.
    user = "user=root\n" if os.geteuid() == 0 else ""
    head = f"""\
[unix_http_server]
file={_escape(str(paths.socket))}
chmod=0700
{auth}
[supervisord]
nodaemon=true
logfile={_escape(str(paths.log))}
logfile_maxbytes=5MB
logfile_backups=2
loglevel=info
pidfile={_escape(str(paths.pidfile))}
identifier=runway
{user}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{_escape(str(paths.socket))}
{auth}
"""
    programs = [
        program_section(
            spec.name, spec.command, directory=directory, priority=_PRIORITY.get(spec.name, 400)
        )
        for spec in specs
    ]
    include = f"[include]\nfiles = {_escape(str(paths.extra))}/*.conf\n"
    return head + "\n".join(programs) + "\n" + include


class Supervisor:
    """A client for the running supervisord (`manage.py serve`), over its unix socket."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def _rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        secret = self.paths.secret.read_text().strip() if self.paths.secret.exists() else None
        transport = SupervisorTransport(
            "runway" if secret else None, secret, serverurl=f"unix://{self.paths.socket}"
        )
        # The host part is ignored: the transport speaks over the socket.
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def call(self, method: str, *args: Any) -> Any:
        """One XML-RPC call. Raises SupervisionError with a reason a person can act on."""
        if not self.paths.socket.exists():
            raise SupervisionError(
                "Runway's processes are not running here (no supervisor socket at "
                f"{self.paths.socket}): start them with `make run`."
            )
        try:
            return getattr(self._rpc(), method)(*args)
        except xmlrpc.client.Fault as exc:
            name = args[0] if args else ""
            if "BAD_NAME" in exc.faultString:
                raise SupervisionError(f"No process {name!r}: {self.known_names()}.") from None
            raise SupervisionError(f"supervisord refused {method}: {exc.faultString}") from None
        except OSError as exc:
            raise SupervisionError(
                f"Runway's processes are not running here ({exc.strerror or exc}): "
                "start them with `make run`."
            ) from None

    def running(self) -> bool:
        try:
            self.call("getState")
        except SupervisionError:
            return False
        return True

    def processes(self) -> list[dict[str, Any]]:
        """supervisord's process info: name, statename, pid (0 when not running), description."""
        return list(self.call("getAllProcessInfo"))

    def known_names(self) -> str:
        try:
            return "processes are " + ", ".join(p["name"] for p in self.processes())
        except SupervisionError:
            return "no processes"

    def pid(self, name: str) -> int:
        info = self.call("getProcessInfo", name)
        if not info["pid"]:
            raise SupervisionError(f"{name} is not running ({info['statename']}).")
        return int(info["pid"])

    def restart(self, name: str) -> int:
        """Stop (warmly) and start one process; returns its new pid."""
        info = self.call("getProcessInfo", name)
        if info["pid"]:
            self.call("stopProcess", name, True)
        self.call("startProcess", name, True)
        return self.pid(name)

    def add_program(self, name: str, section: str) -> int:
        """Add and start a program (its section written with autostart=false) while the others
        keep running; returns its pid once supervisord counts it as started."""
        self.paths.extra.mkdir(parents=True, exist_ok=True)
        (self.paths.extra / f"{name}.conf").write_text(section)
        self.call("reloadConfig")
        self.call("addProcessGroup", name)
        self.call("startProcess", name, True)
        return self.pid(name)

    def remove_program(self, name: str) -> None:
        """Stop (warmly) and forget a program added with add_program."""
        info = self.call("getProcessInfo", name)
        if info["pid"]:
            self.call("stopProcess", name, True)
        self.call("removeProcessGroup", name)
        (self.paths.extra / f"{name}.conf").unlink(missing_ok=True)
        self.call("reloadConfig")
